# Sourced by gpu_measure.sh and gpu_grid.sh (needs $py and $log): installs the wheels of what a
# GPU machine's image lacks (./.whl, README "Running on a GPU"; WHL names another folder, an
# empty WHL installs nothing) into a temporary folder and puts it and the checkout on
# PYTHONPATH (its scripts on PATH).
whl=${WHL-.whl}
if [ -n "$whl" ] && ls "$whl"/*.whl >/dev/null 2>&1; then
  site=$(mktemp -d)
  "$py" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$site" \
    "$whl"/*.whl >>"$log" 2>&1 || { echo "installing $whl failed (see $log)"; exit 1; }
  export PYTHONPATH="$site:$PWD" PATH="$site/bin:$PATH"
else
  export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
