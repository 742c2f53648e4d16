# The two commands a new user needs (README): `make demo` and `make test`.
# Everything installs into .venv from the package registries; nothing else is assumed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEMO   ?= demo
REPLAY_DEMO ?= demo-replay
# What pip installs with, here and in the Dockerfile (a test checks they agree).
PIP_INSTALL := pip install --quiet --no-cache-dir -c constraints.txt

.PHONY: setup demo replay-demo test lint bench mutate clean debs

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11 or newer is needed"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/$(PIP_INSTALL) -e '.[test]'
	@touch $(STAMP)

## demo: embedded broker, simulated municipality, the worker, a live view (Ctrl-C stops all)
demo: setup
	$(BIN)/triage dev --dir $(DEMO)

## replay-demo: a 100,000-event municipality decided offline by `triage replay`, in its own
## directory (not demo/, which `make demo` feeds)
replay-demo: setup
	$(BIN)/triage simulate $(REPLAY_DEMO) --events 100000
	$(BIN)/triage replay $(REPLAY_DEMO)/events.jsonl --persons $(REPLAY_DEMO)/persons.jsonl \
	    --cases $(REPLAY_DEMO)/cases.jsonl --out $(REPLAY_DEMO)/decisions.jsonl \
	    --tasks $(REPLAY_DEMO)/tasks.jsonl

## test: lint, type-check the core, run every test (exit status is honest), in two processes
## (most of the suite waits on brokers and workers; one file's tests stay in one process)
test: setup lint debs
	$(BIN)/python -m pytest -n 2 --dist loadfile

## debs: the Debian packages the tests drive for real (Compose validation, Prometheus and
## promtool, the browser test's chromium, PostgreSQL), installed only when missing (CI is root)
debs:
	scripts/ensure-debs docker-compose:docker-compose promtool:prometheus \
	    prometheus:prometheus chromium:chromium chromedriver:chromium-driver \
	    '/usr/lib/postgresql/*/bin/initdb:postgresql' '/usr/lib/postgresql/*/bin/pg_ctl:postgresql'


lint: setup
	$(BIN)/ruff check triage connectors tests bench
	$(BIN)/mypy

## bench: replay vs json.loads and memory; rules diff vs replay; the live worker vs bare
## faust and bare aiokafka; restart time against journal length
bench: setup
	$(BIN)/python -m bench.replay_bench
	$(BIN)/python -m bench.diff_bench
	$(BIN)/python -m bench.stream_bench
	$(BIN)/python -m bench.restart_bench

## mutate: mutation testing of the decision modules (mutmut; not part of `make test`).
## Its own venv: mutmut needs click >= 8.4, which faust-streaming declares it does not support;
## the tests mutmut runs never import faust. The pin is the `mutate` extra in pyproject.toml.
## Every run starts afresh (mutmut would otherwise keep verdicts from before a test changed).
MVENV        := .venv-mutate
MUTATE_STAMP := $(MVENV)/.installed

$(MUTATE_STAMP): pyproject.toml
	$(PYTHON) -m venv $(MVENV)
	$(MVENV)/bin/pip install --quiet --upgrade pip
	$(MVENV)/bin/pip install --quiet -e '.[test]'
	$(MVENV)/bin/pip install --quiet $$($(PYTHON) -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))["project"]["optional-dependencies"]["mutate"])')
	@touch $(MUTATE_STAMP)

mutate: $(MUTATE_STAMP)
	rm -rf mutants
	PATH="$(CURDIR)/$(MVENV)/bin:$$PATH" $(MVENV)/bin/mutmut run  # its type check runs this venv's mypy
	$(MVENV)/bin/mutmut export-cicd-stats && cat mutants/mutmut-cicd-stats.json && echo
	$(MVENV)/bin/mutmut results

clean:
	rm -rf $(VENV) $(MVENV) $(DEMO) $(REPLAY_DEMO) mutants .pytest_cache .mypy_cache .ruff_cache
