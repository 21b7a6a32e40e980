# SecureChat: `make run` serves the app on http://127.0.0.1:8000, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# The browser client: npm ci when the lock file changes, a build when its sources do.
NPM_STAMP := frontend/node_modules/.npm-ci-stamp
BUILD_STAMP := web/static/web/dist/manifest.json
FRONTEND_SOURCES := $(shell find frontend/src -type f 2>/dev/null)

.PHONY: run test test-postgres lint fmt requirements clean soak frontend

run: $(STAMP) frontend
	@DEBUG=$${DEBUG:-1} $(BIN)/python scripts/serve.py

test: $(STAMP) lint frontend
	cd frontend && npm test
	$(BIN)/pytest

# The database-facing tests again on PostgreSQL, the production database, in a database
# made for the run and dropped after it; testing/postgres.py uses the server answering on
# 127.0.0.1:5432 without a password, or starts its own (needs `apt-get install postgresql`),
# and, as a plugin, keeps the tests that use the database in-process: the daphne-driving ones
# run on a SQLite file of their own either way. Not web/: the browser tests check the page.
PG_SUITES ?= accounts keys chat client securechat
test-postgres: $(STAMP)
	$(BIN)/python -m testing.postgres -- $(BIN)/pytest $(PG_SUITES) -p testing.postgres -p no:randomly -q

# The state machine with faults, under a load of simulated users, for SOAK_MINUTES;
# samples, plot and summary under bench/results/ (bench/README.md).
soak: $(STAMP)
	$(BIN)/python bench/soak.py --minutes $${SOAK_MINUTES:-5}

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

$(STAMP): requirements.txt requirements-dev.txt
	@scripts/check_prerequisites.sh $(PYTHON)
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt -r requirements-dev.txt
	@touch $@

# esbuild, the client's libraries and axe-core (the accessibility checks of the tests).
$(NPM_STAMP): frontend/package-lock.json frontend/package.json
	@scripts/check_prerequisites.sh --node
	cd frontend && npm ci --no-audit --no-fund
	@touch $@

# Rebuilt when a source, the build script or the installed packages are newer than the
# last build; frontend/build.mjs clears web/static/web/dist/ first and writes the manifest
# last, so a failed build leaves no manifest and is retried next time.
frontend: $(BUILD_STAMP)
$(BUILD_STAMP): $(NPM_STAMP) frontend/build.mjs $(FRONTEND_SOURCES)
	@scripts/check_prerequisites.sh --node
	cd frontend && npm run build

# Re-pin after editing requirements*.in.
requirements: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile -q --strip-extras --no-header --allow-unsafe --no-emit-index-url --no-emit-find-links requirements.in -o requirements.txt
	$(BIN)/pip-compile -q --strip-extras --no-header --allow-unsafe --no-emit-index-url --no-emit-find-links requirements-dev.in -o requirements-dev.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache frontend/node_modules web/static/web/dist
