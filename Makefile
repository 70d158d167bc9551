# The two commands a newcomer runs: `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
export LITELLM_LOCAL_MODEL_COST_MAP := True
export HF_HUB_OFFLINE := 1
# Bytecode caches on, even where the environment turns them off: without them every process
# compiled the project from source and pytest rewrote its plugins' modules again (~3 s of CPU
# per test process and ~0.6 s per subprocess: 9.9 s -> 6.6 s to start a pytest run).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: install demo test lint typecheck bench clean

$(VENV)/.installed: pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@# torch first, pinned: the CPU wheel; an unpinned torch would pull GBs of CUDA packages.
	@$(PY) -c "import torch" 2>/dev/null || $(PIP) install -q torch==2.13.0
	$(PIP) install -q -e '.[dev,embed]'
	@touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/prelabel demo

# Two processes, one test file each at a time: module-scoped set-ups stay in one process.
# Files in the order tests/conftest.py gives them (slowest first), not by their test count.
test: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(PY) -m pytest -n 2 --dist loadfile --no-loadscope-reorder

lint: install
	$(VENV)/bin/ruff check .

# The packages and the strictness per package are in pyproject.toml ([tool.mypy]).
typecheck: install
	$(VENV)/bin/mypy

bench: install
	$(VENV)/bin/prelabel bench throughput --pairs 2000 --judges 2 --latency-ms 0
	$(VENV)/bin/prelabel bench throughput --pairs 2000 --judges 2 --latency-ms 300

clean:
	rm -rf $(VENV) prelabel.db prelabel.db-wal prelabel.db-shm
