# The two commands a new user needs (README): `make demo` and `make test`.
# Everything installs into .venv from the package registries; nothing else is assumed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo

.PHONY: setup debs demo replay-demo test lint bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[test]'
	@touch $(STAMP)

## demo: embedded broker, simulated municipality, the worker, a live view (Ctrl-C stops all)
demo: setup
	$(BIN)/triage dev --dir $(DEMO)

## replay-demo: the same demo data decided offline by `triage replay`
replay-demo: setup
	$(BIN)/triage simulate $(DEMO) --events 100000
	$(BIN)/triage replay $(DEMO)/events.jsonl --persons $(DEMO)/persons.jsonl \
	    --cases $(DEMO)/cases.jsonl --out $(DEMO)/decisions.jsonl --tasks $(DEMO)/tasks.jsonl

## debs: the Debian packages the tests drive (chromium, prometheus, postgresql), when missing
debs:
	scripts/ensure-debs

## test: lint, type-check the core, run every test (exit status is honest)
test: setup lint debs
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check triage connectors tests bench
	$(BIN)/mypy

## bench: replay vs json.loads and memory; the live worker vs bare faust and bare aiokafka
bench: setup
	$(BIN)/python -m bench.replay_bench
	$(BIN)/python -m bench.stream_bench

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache .mypy_cache .ruff_cache
