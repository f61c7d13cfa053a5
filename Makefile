# The README's commands. Each target creates .venv and installs the project when missing.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo dev test lint screenshots upgrade clean

demo: $(INSTALLED)
	$(BIN)/halo-pipeline demo

dev: $(INSTALLED)
	$(BIN)/halo-pipeline dev

# Three workers on two cores: much of the suite waits on servers and on processes it started
# (four were slower: 296-409 s against 264-283 s). A module stays on one worker (its fixtures
# are made once), and the longest modules are handed out first (the conftest's order, kept by
# --no-loadscope-reorder) so that none starts late and runs on alone at the end.
# The suite's budget is the time of `dg check defs` and pytest together, run side by side and
# printed last; the twenty slowest tests are listed above it. The project's modules are
# compiled first: PYTHONDONTWRITEBYTECODE, where it is set, would have every process the suite
# starts compile them again. Its files go to memory (/dev/shm) where the machine
# has it: DuckDB and Dagster's SQLite storage sync every commit to disk, which made the suite
# wait on the disk for as long again as it computed (test_access_policy: 54 s on disk, 30 s
# in memory, the same CPU); what is tested is behaviour, not the disk.
test: $(INSTALLED)
	scripts/install-system-deps.sh
	$(BIN)/lint-imports
	@started=$$(date +%s); \
	if [ -d /dev/shm ] && [ -w /dev/shm ]; then export TMPDIR=/dev/shm; fi; \
	PYTHONDONTWRITEBYTECODE= $(BIN)/python -m compileall -q halo_pipeline halo_pipeline_tests; \
	checked=$$(mktemp); \
	$(BIN)/dg check defs >$$checked 2>&1 & checking=$$!; \
	$(BIN)/pytest -n 3 --dist loadscope --no-loadscope-reorder --durations=20; \
	status=$$?; \
	wait $$checking || status=1; \
	sed 's/^/dg check defs: /' $$checked; rm -f $$checked; \
	echo "make test: dg check defs and pytest took $$(( $$(date +%s) - started )) s"; \
	exit $$status

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

# uv.lock decides every version installed. The uv that wrote it reads it, pinned so that a new
# uv release changes neither; raise it by hand.
UV := uv==0.13.9
# The lock for pip, where uv cannot be had: every version and hash, the project left out (it is
# installed editable after). halo_pipeline_tests/test_locked_install.py runs the same export.
EXPORT := $(BIN)/uv export --quiet --frozen --all-extras --no-emit-project

# uv installs exactly the lock (--frozen: not resolved again; removing what it does not hold),
# compiled as pip does (an import of dagster from source takes twice as long), the project
# editable, in under half of pip's time (34 s against 76 s from scratch on two cores).
# pip alone does it where uv cannot be had, from the export above, checking every hash;
# --no-deps since the export holds every dependency (and pip 23's hash checking refuses a
# dependency asked for with extras, gql[requests]).
$(INSTALLED): pyproject.toml uv.lock
	$(PYTHON) -m venv $(VENV)
	( $(BIN)/pip install --quiet '$(UV)' && \
	  UV_PROJECT_ENVIRONMENT=$(VENV) $(BIN)/uv sync --quiet --frozen --all-extras \
	    --compile-bytecode --python $(BIN)/python ) || \
	  ( $(BIN)/pip install --quiet --no-deps --requirement requirements.lock.txt && \
	    $(BIN)/pip install --quiet --no-deps --editable . )
	touch $@

# Newer versions, within pyproject.toml's ranges: the lock resolved again from the newest
# releases, its export for pip written anew, and .venv made to match. Commit both files.
upgrade: $(INSTALLED)
	$(BIN)/uv lock --upgrade
	$(EXPORT) > requirements.lock.txt
	$(MAKE) $(INSTALLED)

clean:
	rm -rf $(VENV) data .dagster_home
