# The two commands a newcomer needs: `make run` and `make test`.
# Both create .venv when missing and install what they need.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: run test lint bench clean-venv fmt

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

run: $(STAMP)
	$(BIN)/musubi

test: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check core tui connectors tutorials tests benchmarks
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

fmt: $(STAMP)
	$(BIN)/ruff format core tui connectors tutorials tests benchmarks

clean-venv:
	rm -rf $(VENV)
