# Two set-up commands (see README): `make demo` and `make test`. Both create .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint venv clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

venv: $(STAMP)

## Run the main job on the built-in model: a parity comparison, InsightFace reference vs ONNX Runtime.
demo: $(STAMP)
	$(BIN)/arcface-trt compare --n-samples 100

## Run the test suite (no GPU needed; GPU tests are skipped without one).
test: $(STAMP)
	$(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check arcface_trt tests scripts
	$(BIN)/ruff format --check arcface_trt tests scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache *.egg-info
