# The README's commands. Each target creates .venv and installs the project when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo dev test lint clean

demo: $(INSTALLED)
	$(BIN)/halo-pipeline demo

dev: $(INSTALLED)
	$(BIN)/halo-pipeline dev

test: $(INSTALLED)
	scripts/install-system-deps.sh
	$(BIN)/pytest

lint: $(INSTALLED)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --editable '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) data .dagster_home
