# Set-up and the two everyday commands. `make demo` and `make test` install what they need.
VENV   ?= .venv
PY     := $(VENV)/bin/python
# torch 2.13.0: on the CPU-only reference machine this is the CPU build; elsewhere pip picks
# the build for your platform (CUDA on Linux x86_64). Install torch yourself first to choose.
TORCH  ?= torch==2.13.0

.PHONY: setup demo test lint format clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install --quiet "$(TORCH)"
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $@

demo: setup
	$(VENV)/bin/synthmed demo

test: setup
	$(PY) -m pytest -q

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

clean:
	rm -rf synthmed-demo .pytest_cache .ruff_cache
