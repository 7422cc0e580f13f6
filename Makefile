# All set-up happens here: `make demo` and `make test` create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-fast test-all lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	bash examples/demo.sh $(VENV)/bin/netsurgeon

test: lint  # what CI runs: everything but the tests marked slow (they take minutes)
	$(PY) -m pytest -q -n 2 -m "not slow" tests

test-all: lint  # the slow ones too: 30,000 mutated native files, 1,000,000-node chains
	$(PY) -m pytest -q -n 2 tests

test-fast: $(STAMP)  # the edit loop: the suite without ruff
	$(PY) -m pytest -q -n 2 -m "not slow" tests

lint: $(STAMP)
	$(PY) -m ruff check src tests bench

bench: $(STAMP)
	for f in bench/bench_*.py; do $(PY) $$f || exit 1; done

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info
