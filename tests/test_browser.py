"""What a person sees: notebooks 05 and 01 opened in JupyterLab in a real (headless) Chromium, Run All.

JupyterLab listens on 127.0.0.1 with a token; Debian's ``chromium`` + ``chromium-driver`` are
driven by selenium (no browser download: it must work offline; ``.ci/run`` installs them).
Copies of the notebooks whose parameters cell says ``preset = "smoke"`` run in a temporary
folder with the package importable, their own cache and results. Asserted per notebook: it
opens unmodified (JupyterLab does not rewrite its metadata), no error output and no warning
box, equations typeset by MathJax with no raw ``$...$`` left, at least one inline image in
every cell that draws a figure, no stray repr (``PosixPath(...)``, ``<Figure ...>``), and the
CSV lands under ``results/smoke/interactive/``. Server and browser are stopped by process id.
Set ``SCFLOW_BROWSER_SHOTS=<dir>`` to keep screenshots of notebook 05.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

from scflow.cache import REPO_ROOT
from scflow.repro.notebooks import parameters_cell_index

pytestmark = pytest.mark.slow

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
NOTEBOOKS = ("05_bidirectional_loss", "01_latent_flow_matching")  # 05 first: a fresh cache
FIGURE_CALL = re.compile(r"\b(trajectory|save_figure|show)\(")
STRAY_REPR = re.compile(r"PosixPath\(|<Figure size|<matplotlib\.")
RUN_TIMEOUT_S = 240


def _require_browser() -> None:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing and os.environ.get("CI"):
        pytest.fail(f"{', '.join(missing)} missing in CI: .ci/run installs chromium and "
                    "chromium-driver")
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (apt-get install chromium "
                    "chromium-driver); CI installs them and runs this test")
    pytest.importorskip("selenium", reason="selenium is in the dev extra: pip install -e .[dev]")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _smoke_copy(name: str, folder: Path) -> Path:
    nb = nbformat.read(REPO_ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    cell = nb.cells[parameters_cell_index(nb)]
    cell.source, n = re.subn(r'^preset = "mini"', 'preset = "smoke"', cell.source, flags=re.M)
    assert n == 1, "the parameters cell must set preset"
    path = folder / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process group we started, by its id: SIGTERM, then SIGKILL."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """A JupyterLab server on 127.0.0.1 in a temp folder holding smoke copies of NOTEBOOKS."""
    _require_browser()
    root = tmp_path_factory.mktemp("lab")
    for name in NOTEBOOKS:
        _smoke_copy(name, root)
    settings = root / ".settings" / "@jupyterlab" / "notebook-extension"
    settings.mkdir(parents=True)
    # every cell rendered, not only the visible ones, so the whole notebook can be checked
    (settings / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
    notify = root / ".settings" / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True)  # no "get notified about Jupyter news?" prompt (offline)
    (notify / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
    token, port = secrets.token_hex(16), _free_port()
    env = {k: v for k, v in os.environ.items()
           if k not in ("MPLBACKEND", "TQDM_DISABLE", "SCFLOW_RUNNER", "SCFLOW_NOTEBOOKS")}
    env.update({
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO_ROOT), env.get("PYTHONPATH")) if p),
        "JUPYTER_PATH": str(Path(sys.prefix) / "share" / "jupyter"),
        "JUPYTER_CONFIG_DIR": str(root / ".config"), "JUPYTER_RUNTIME_DIR": str(root / ".rt"),
        "JUPYTERLAB_SETTINGS_DIR": str(root / ".settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(root / ".ws"),
        "SCFLOW_CACHE": str(root / "cache"), "SCFLOW_RESULTS": str(root / "results"),
        "OMP_NUM_THREADS": "1",
    })
    log = open(root / "lab.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
         f"--port={port}", f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.allow_root=True"],
        cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                urllib.request.urlopen(f"{url}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"JupyterLab did not start:\n{(root / 'lab.log').read_text()}")
                time.sleep(0.5)
        yield {"url": url, "token": token, "root": root}
    finally:
        _stop(proc)
        log.close()


@pytest.fixture(scope="module")
def browser(lab):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-dev-shm-usage", "--window-size=1400,1000",
                f"--user-data-dir={lab['root'] / '.chromium'}"):
        opts.add_argument(arg)
    service = Service(str(CHROMEDRIVER), start_new_session=True)
    driver = webdriver.Chrome(service=service, options=opts)
    try:
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            if service.process is not None and service.process.poll() is None:
                _stop(service.process)


def _wait(driver, script: str, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = driver.execute_script(script)
        if value:
            return value
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f} s waiting for {what}")


PANEL = "const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;"
KERNEL_IDLE = PANEL + """
return !!(w && w.content && w.sessionContext && w.sessionContext.session
          && w.sessionContext.session.kernel
          && w.sessionContext.session.kernel.status === 'idle');"""
ALL_RUN = PANEL + """
const cells = w.content.model.cells; let n = 0, done = 0;
for (let i = 0; i < cells.length; i++) {
  const c = cells.get(i);
  if (c.type !== 'code') continue;
  n++; if (c.executionCount !== null && c.executionCount !== undefined) done++;
}
return n === done && w.sessionContext.session.kernel.status === 'idle';"""
CELLS = PANEL + """
const out = [], nodes = w.content.widgets;
for (let i = 0; i < nodes.length; i++) {
  const j = nodes[i].model.toJSON();
  out.push({type: j.cell_type, source: [].concat(j.source).join(''), outputs: j.outputs || [],
            imgs: nodes[i].node.querySelectorAll('.jp-OutputArea img').length,
            text: j.cell_type === 'markdown'
              ? nodes[i].node.querySelector('.jp-RenderedMarkdown')?.innerText || '' : ''});
}
return out;"""


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_in_jupyterlab(lab, browser, name):
    shots = os.environ.get("SCFLOW_BROWSER_SHOTS")
    browser.get(f"{lab['url']}/lab/tree/{name}.ipynb?token={lab['token']}")
    _wait(browser, KERNEL_IDLE, 90, "the notebook and its kernel")
    time.sleep(2)  # JupyterLab writes kernelspec / language_info once the kernel is up
    assert not browser.execute_script(PANEL + "return w.context.model.dirty;"), \
        "the notebook is marked modified on open: its metadata differ from what JupyterLab writes"
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(Path(shots) / f"{name}_top.png"))
    start = time.time()
    browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells');")
    first = _wait(browser, PANEL + "return w.node.querySelector('.jp-OutputArea img');",
                  RUN_TIMEOUT_S, "the first figure")
    first_s = time.time() - start
    if shots:
        browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", first)
        browser.save_screenshot(str(Path(shots) / f"{name}_first_figure.png"))
    _wait(browser, ALL_RUN, RUN_TIMEOUT_S, "Run All to finish")
    print(f"{name}: first figure after {first_s:.1f} s, Run All {time.time() - start:.1f} s")
    cells = browser.execute_script(CELLS)

    problems = []
    for i, c in enumerate(cells):
        for o in c["outputs"]:
            if o["output_type"] == "error":
                problems.append(f"cell {i}: {o['ename']}: {o['evalue']}")
            elif o["output_type"] == "stream" and o["name"] == "stderr":
                problems.append(f"cell {i}: stderr box: {''.join(o['text'])[:200]!r}")
            elif o["output_type"] == "execute_result":
                text = "".join(o.get("data", {}).get("text/plain", ""))
                if STRAY_REPR.search(text):
                    problems.append(f"cell {i}: stray output {text[:80]!r}")
        if c["type"] == "code" and FIGURE_CALL.search(c["source"]) and c["imgs"] == 0:
            problems.append(f"cell {i} draws a figure but shows no image")
        if c["type"] == "markdown" and re.search(r"\$[^$\n]+\$", c["text"]):
            problems.append(f"cell {i}: raw TeX left: {c['text'][:80]!r}")
    assert not problems, "\n".join(problems)
    if any("$" in c["source"] for c in cells if c["type"] == "markdown"):
        assert browser.execute_script("return document.querySelectorAll('mjx-container').length")
    assert list((lab["root"] / "results" / "smoke" / "interactive").glob("*.csv")), \
        "an interactive run must write under results/smoke/interactive/"
    browser.execute_script(PANEL + "return w.context.sessionContext.shutdown();")

