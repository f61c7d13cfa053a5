# The README's commands. Each target creates .venv and installs the project when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo dev test lint screenshots clean

demo: $(INSTALLED)
	$(BIN)/halo-pipeline demo

dev: $(INSTALLED)
	$(BIN)/halo-pipeline dev

# Three workers on two cores: much of the suite waits on servers and on processes it started
# (198 s against 228 s with two). A module stays on one worker (its fixtures are made once).
# xdist hands out modules with the most tests first; starting the longest first instead
# (--no-loadscope-reorder) was no faster here: the suite is CPU-bound on two cores, and runs of
# either order took 279-330 s.
test: $(INSTALLED)
	scripts/install-system-deps.sh
	$(BIN)/lint-imports
	$(BIN)/dg check defs
	$(BIN)/pytest -n 3 --dist loadscope

lint: $(INSTALLED)
	$(BIN)/lint-imports
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/pylint --disable=all --enable=duplicate-code --min-similarity-lines=6 halo_pipeline

# Pictures of the Dagster UI (the README's) and of an access review's pages, taken into docs/ by
# the browser tests against the simulator.
screenshots: $(INSTALLED)
	scripts/install-system-deps.sh
	HALO_SCREENSHOTS_DIR=$(CURDIR)/docs $(BIN)/pytest halo_pipeline_tests/test_ui_browser.py \
	  halo_pipeline_tests/test_review_pages_browser.py

# uv installs the versions pip would, compiled as pip does (an import of dagster from source
# takes twice as long), in a third of the time (15 s against 50 s on two cores);
# pip alone does it where uv cannot be had.
$(INSTALLED): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	( $(BIN)/pip install --quiet uv && \
	  $(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python --editable '.[dev]' ) || \
	  $(BIN)/pip install --quiet --editable '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) data .dagster_home
