# Two commands do all the set-up: `make demo` and `make test`.
# Both create .venv if it is missing and install graphattn into it; later calls reuse it.

PYTHON ?= python3
VENV   ?= .venv
# The CPU build of PyTorch. On the project's machines this wheel lies on disk (pip's
# find-links), so nothing is downloaded and no CUDA build is ever pulled.
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.graphattn-installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

demo: $(STAMP)
	$(PY) examples/economy_study.py --quick

test: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/dense_vs_sparse.py --quick
	$(PY) benchmarks/sparse_scaling.py --quick

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
