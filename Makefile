# The two commands a newcomer needs: `make run` and `make test`.
# Both create .venv when missing and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test cov lint bench clean-venv fmt sysdeps

$(BIN)/python:
	$(PY) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --upgrade -q pip
	# torch's CPU build, from this machine's local wheel store; never a CUDA build.
	if ls /opt/wheels/torch-2.13.0+cpu-*.whl >/dev/null 2>&1; then \
	  $(BIN)/pip install -q /opt/wheels/torch-2.13.0+cpu-*.whl; \
	else \
	  $(BIN)/pip install -q "torch==2.13.0"; \
	fi
	$(BIN)/pip install -q -e ".[ml,dev]"
	touch $(STAMP)

# System tools some tests and benchmarks drive (tmux: the real-terminal TUI test;
# ripgrep: the trace benchmark's baseline; jq: shell examples in the docs).  Best effort: without root the
# tests that need them say so and skip.
sysdeps:
	@for t in tmux:tmux rg:ripgrep jq:jq; do \
	  cmd=$${t%%:*}; pkg=$${t##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || { \
	    if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	      (apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq $$pkg >/dev/null 2>&1) || echo "could not install $$pkg"; \
	    else echo "note: $$pkg is not installed; tests that need it will skip"; fi; }; \
	done

run: $(STAMP)
	$(BIN)/musubi

# The suite runs on TEST_WORKERS pytest-xdist workers (the tests mostly wait on engine and CLI
# subprocesses, so more workers than cores pays); each test module is one group on one worker
# (tests/conftest.py).  `make test TEST_WORKERS=0` runs it serially.
TEST_WORKERS ?= 4
test: $(STAMP) sysdeps
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup

# The suite under coverage, engine and CLI subprocesses included (see [tool.coverage.run] in
# pyproject.toml), then line coverage per package.  Fails when a test fails or the total
# is under fail_under.
cov: $(STAMP) sysdeps
	rm -f .coverage .coverage.*
	$(BIN)/python -m coverage run -m pytest -q -p no:cacheprovider; rc=$$?; \
	  $(BIN)/python -m coverage combine -q && $(BIN)/python tools/cov_report.py || rc=1; exit $$rc

lint: $(STAMP)
	$(BIN)/ruff check core tui connectors tutorials tests benchmarks tools
	$(BIN)/mypy
	$(BIN)/mypy tests/tui/fakes.py tests/tui/fake_engine.py tests/tui/contract.py tests/tui/test_api_contract.py
	$(BIN)/lint-imports

bench: $(STAMP) sysdeps
	$(BIN)/python benchmarks/run_all.py

fmt: $(STAMP)
	$(BIN)/ruff format core tui connectors tutorials tests benchmarks tools

clean-venv:
	rm -rf $(VENV)
