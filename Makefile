# All set-up for a fresh Debian/Ubuntu machine with only Python present:
#   make demo   - system packages, .venv (torch first), the project, then the demo pipeline
#   make test   - the same set-up, then the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
TORCH  := torch==2.13.0
EXTRAS := all,dev
STAMP  := $(VENV)/.unitwave-installed

.PHONY: demo test setup system-packages clean benchmarks

demo: setup
	$(BIN)/unitwave demo runs/demo

test: setup
	$(BIN)/python -m pytest $(PYTEST_ARGS)

benchmarks: setup
	$(BIN)/python benchmarks/run_all.py

setup: system-packages $(STAMP)

# Checks with dpkg first, so a machine that has everything runs no apt at all.
system-packages:
	@sh scripts/system-packages.sh

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Reinstalls only when pyproject.toml changes. torch goes in FIRST: anything that pulls torch
# later must find 2.13.0 already satisfied instead of fetching a CUDA build.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q $(TORCH)
	$(BIN)/python -m pip install -q -e ".[$(EXTRAS)]"
	touch $@

clean:
	rm -rf $(VENV) runs .pytest_cache
