# Set-up and entry points. Both main targets do all set-up on a fresh machine
# that has only Python and pip: create .venv, install the package, run.
#
#   make demo    train the digits demo on the embedded database, print results
#   make test    unit tests + integration tests on the embedded PostgreSQL, then
#                integration tests on every server in NNTRANSFER_TEST_SERVERS

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

# Space-separated database URLs, e.g.
#   postgresql://postgres@127.0.0.1:5432 mysql://root@127.0.0.1:3306
NNTRANSFER_TEST_SERVERS ?=

.PHONY: install demo test unit integration bench docs clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/nntransfer demo

test: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir build/docs
	$(BIN)/python -m pytest tests
	@for url in $(NNTRANSFER_TEST_SERVERS); do \
		echo "== integration tests on $${url%%://*} server"; \
		NNTRANSFER_TEST_SERVER=$$url $(BIN)/python -m pytest tests/integration || exit 1; \
	done

unit: install
	$(BIN)/python -m pytest tests/unit

bench: install
	$(BIN)/python benchmarks/populate_overhead.py

docs: install
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir build/docs

clean:
	rm -rf $(VENV) .nntransfer .pytest_cache
