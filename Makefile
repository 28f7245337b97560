# The two commands of the README:
#   make reproduce [PRESET=mini|smoke|celebahq256] [JOBS=2]   the main job (notebooks via the papermill runner)
#   make test                                        the test suite (what CI runs)
#   make gpu-check                                   first command on a GPU machine (<= 5 min)
#   make verify [VERIFY_RUNS=...]                    rerun committed runs from scratch, compare every value
# Both install what is missing first: into the active environment (conda or venv) if one is
# active, else into ./.venv.

PRESET ?= mini
RUNS ?= papermill_runs
# notebooks executed at once (each with cpu_count/JOBS threads); 2 suits the 2-core default
JOBS ?= 2
# extra runner flags, e.g. RUN_ARGS=--force to redo runs whose results are already committed
RUN_ARGS ?=
# the committed runs `make verify` reruns from scratch (teacher, CD, +GAN, full SCFlow)
VERIFY_RUNS ?= papermill_runs/01_teacher.yaml papermill_runs/table4_cd.yaml \
	papermill_runs/table4_gan.yaml papermill_runs/table4_bi.yaml

ifneq ($(strip $(VIRTUAL_ENV)$(CONDA_PREFIX)),)
  PYTHON := python
  STAMP := .installed-env
else
  PYTHON := .venv/bin/python
  STAMP := .venv/.installed
endif

.PHONY: reproduce study test install lint strip benchmarks clean-cache help gpu-check verify

help:
	@echo "make reproduce [PRESET=$(PRESET)]  |  make test  |  make lint  |  make benchmarks"

$(STAMP): pyproject.toml
ifeq ($(PYTHON),.venv/bin/python)
	test -x .venv/bin/python || python3 -m venv .venv
endif
	$(PYTHON) -m pip install --quiet -e '.[dev]'
	@touch $@

install: $(STAMP)

reproduce: $(STAMP)
	$(PYTHON) -m scflow.repro.run $(RUNS) --preset $(PRESET) --jobs $(JOBS) $(RUN_ARGS)

# temporary cache and results (nothing of cache/ or results/ is used or changed); exit 1 if a
# value is not bit-identical (RUN_ARGS=--tolerance 1e-6 to accept relative differences)
verify: $(STAMP)
	$(PYTHON) -m scflow.repro.run --verify $(VERIFY_RUNS) --preset $(PRESET) --jobs $(JOBS) $(RUN_ARGS)

# the training-budget study that chose the mini preset's schedule and updates (not part of the
# grid: make reproduce regenerates what it chose)
study: $(STAMP)
	$(PYTHON) -m scflow.repro.run studies --preset $(PRESET) --jobs $(JOBS) $(RUN_ARGS)

test: $(STAMP)
	$(PYTHON) -m ruff check scflow tests benchmarks notebooks
	$(PYTHON) -m pytest -q

lint: $(STAMP)
	$(PYTHON) -m ruff check scflow tests benchmarks notebooks

# remove outputs and execution counts from every notebook (run before committing notebooks)
strip: $(STAMP)
	$(PYTHON) -m nbstripout --keep-id notebooks/*.ipynb

benchmarks: $(STAMP)
	$(PYTHON) benchmarks/bench_teacher.py
	$(PYTHON) benchmarks/bench_distill_step.py
	$(PYTHON) benchmarks/bench_jobs.py

# teacher + one student (fp32, bf16) on cuda, FID, update times; pass/fail table. Exit 2
# within seconds where no CUDA GPU is visible.
gpu-check: $(STAMP)
	$(PYTHON) -m scflow.repro.gpu_check

clean-cache:
	rm -rf cache runs
