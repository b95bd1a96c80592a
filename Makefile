# Two commands do all the set-up: `make demo` and `make test`.
# Both create .venv if it is missing and install graphattn into it; later calls reuse it.
# Commands in the docs run from the repository root with .venv/bin on PATH
# (`. .venv/bin/activate`), or with `.venv/bin/python` for `python`.

PYTHON ?= python3
VENV   ?= .venv
# The PyTorch build: a wheel on this machine's disk when one satisfies it (on the project's
# machines torch 2.13.0's CPU build lies in pip's find-links), else from TORCH_INDEX, PyTorch's
# CPU wheel index; never from plain PyPI, where torch for Linux is a CUDA build.
TORCH  ?= torch==2.13.0
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.graphattn-installed
DOCS   := README.md docs/*.md
SETUP  := python=$(PYTHON) torch=$(TORCH) index=$(TORCH_INDEX)

.PHONY: help demo test test-examples test-all lint docs tables bench record-quick dist check-docs clean

# The stamp records the set-up it was made with: another PYTHON, TORCH or TORCH_INDEX on the
# command line (or a changed pyproject.toml) installs again; another interpreter version makes
# .venv anew.
ifneq ($(shell cat $(STAMP) 2>/dev/null),$(SETUP))
.PHONY: $(STAMP)
endif

$(STAMP): pyproject.toml scripts/setup_venv.sh
	@PYTHON="$(PYTHON)" VENV="$(VENV)" TORCH="$(TORCH)" TORCH_INDEX="$(TORCH_INDEX)" \
		sh scripts/setup_venv.sh
	@echo "$(SETUP)" > $(STAMP)

help:
	@echo "make demo           the quick setting of the studies (CSV + PNG in outputs/)"
	@echo "make test           lint, format check, the unit suite (what CI runs)"
	@echo "make test-examples  tiny runs of the example scripts (pytest -m examples)"
	@echo "make test-all       everything: the slow tests and the example runs too"
	@echo "make lint           ruff check and ruff format --check"
	@echo "make docs           the API reference (Sphinx, warnings are errors) into build/docs"
	@echo "make tables         the README's and docs' tables, from results/*.csv"
	@echo "make bench          the quick settings of the two main benchmarks"
	@echo "make record-quick   re-record every quick result into results/, then the tables"
	@echo "make dist           build and check the sdist and the wheel"
	@echo "make clean          remove .venv, caches and build outputs"

# The quick setting of the three studies (tables printed, CSV + PNG in outputs/<study>/).
demo: $(STAMP)
	$(PY) examples/economy_study.py --quick
	$(PY) examples/sequence_study.py --quick
	$(PY) examples/image_study.py --quick
	$(PY) examples/image_positional.py --quick

# What CI runs first (.ci/run): lint, format check, then the suite without the `slow` tests and
# the runs of the example scripts on two worker processes (pytest-xdist; one torch thread each),
# printing the 15 slowest tests.
test: lint
	$(PY) -m pytest -n 2 --dist loadgroup --durations=15

# Tiny runs of the example scripts (the `examples` marker; PyG too runs its examples outside
# its unit suite): each script end to end, its CSVs, figures and verdicts. CI runs it second.
test-examples: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup -m "examples and not slow" --durations=15

# Everything: the `slow` tests and the example runs included (see README, "Development").
test-all: lint
	$(PY) -m pytest -n 2 --dist loadgroup -m "" --durations=15

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

# The API reference, built by Sphinx from the docstrings into build/docs (open
# build/docs/index.html); a fresh build every time, and any warning fails it (CI runs it).
docs: $(STAMP)
	$(PY) -m sphinx -E -W --keep-going -q -b html docs/api build/docs
	@echo "API reference: build/docs/index.html"

# Regenerate the README's and docs' tables from the CSVs in results/.
tables: $(STAMP)
	$(PY) -m graphattn.experiments.tables $(DOCS)

# The quick settings of the two main benchmarks. Their goals are set at N = 8192 and N = 100k,
# which quick runs do not reach: they judge none (say so) rather than miss them at small N.
bench: $(STAMP)
	$(PY) benchmarks/dense_vs_sparse.py --quick
	$(PY) benchmarks/sparse_scaling.py --quick

# Re-record on this machine every table recorded with a quick setting or in a few minutes (half
# an hour or more on 2 shared cores), then regenerate the docs' tables: each caption then names
# this machine and today. The longer recordings (the full studies and claims, the performance
# benchmarks, the 1M-agent runs) keep theirs; their CSV headers name the command that re-records
# them.
record-quick: $(STAMP)
	$(PY) examples/economy_study.py --quick --no-progress --out results/economy_study/quick
	$(PY) examples/sequence_study.py --quick --no-progress --out results/sequence_study/quick
	$(PY) examples/image_study.py --quick --no-progress --out results/image_study/quick
	$(PY) examples/image_positional.py --quick --no-progress --out results/image_study/quick
	for part in "" _theory _learn; do \
		$(PY) examples/economy_shocks$$part.py --quick --no-progress \
			--out results/economy_shocks_quick || exit 1; done
	for claim in copy diversity motifs sparse prune; do \
		$(PY) examples/claims/heads_$$claim.py --quick --no-progress \
			--out results/head_claims/quick || exit 1; done
	$(PY) examples/claims_table.py --inputs results/head_claims/quick \
		--out results/claims/quick_heads --allow-missing
	for claim in variance params logits depth; do \
		$(PY) examples/claims/transformer_$$claim.py --quick \
			--out results/transformer_claims/quick || exit 1; done
	$(PY) examples/claims/transformer_memory.py --quick \
		--out results/transformer_claims/memory_quick
	$(PY) examples/claims_table.py --out results/claims
	$(PY) examples/karate_club.py --out results/karate_club
	$(PY) benchmarks/auto_crossover.py --out results/auto_crossover \
		--edges 64 256 1024 4096 8192 16384 32768 65536 131072
	$(PY) benchmarks/import_time.py --out results/import_time
	$(PY) benchmarks/mha.py --out results/mha
	$(MAKE) tables

# The sdist and wheel a package index would get, built from a clean dist/ (git ignores it) and
# checked: twine's metadata and long-description check, then scripts/check_dist.py (the licence
# in both, the metadata fields, no relative links in the description).
dist: $(STAMP)
	$(PY) -m pip install --quiet "build>=1.2" "twine>=6.1"
	rm -rf dist
	$(PY) -m build --outdir dist .
	$(PY) -m twine check --strict dist/*
	$(PY) scripts/check_dist.py dist

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache dist build
