# Two commands do all the set-up: `make demo` and `make test`.
# Both create .venv if it is missing and install graphattn into it; later calls reuse it.

PYTHON ?= python3
VENV   ?= .venv
# The CPU build of PyTorch. On the project's machines this wheel lies on disk (pip's
# find-links), so nothing is downloaded and no CUDA build is ever pulled.
TORCH  ?= torch==2.13.0
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.graphattn-installed
DOCS   := README.md docs/*.md

.PHONY: demo test test-all lint tables bench clean

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	@touch $(STAMP)

# The quick setting of the three studies (tables printed, CSV + PNG in outputs/<study>/).
demo: $(STAMP)
	$(PY) examples/economy_study.py --quick
	$(PY) examples/sequence_study.py --quick
	$(PY) examples/image_study.py --quick

# What CI runs (.ci/run): lint, format check, then the suite without the `slow` tests on two
# worker processes (pytest-xdist; one torch thread each), printing the 15 slowest tests.
test: lint
	$(PY) -m pytest -n 2 --dist loadgroup --durations=15

# Everything, the `slow` tests included (see README, "Development").
test-all: lint
	$(PY) -m pytest -n 2 --dist loadgroup -m "" --durations=15

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# Regenerate the README's and docs' tables from the CSVs in results/.
tables: $(STAMP)
	$(PY) -m graphattn.experiments.tables $(DOCS)

bench: $(STAMP)
	$(PY) benchmarks/dense_vs_sparse.py --quick
	$(PY) benchmarks/sparse_scaling.py --quick

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
