# SecureChat: `make run` serves the app on http://127.0.0.1:8000, `make test` proves it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: run test lint fmt requirements clean soak

run: $(STAMP)
	@DEBUG=$${DEBUG:-1} $(BIN)/python scripts/serve.py

test: $(STAMP) lint
	$(BIN)/pytest

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

# Re-pin after editing requirements*.in.
requirements: $(STAMP)
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile -q --strip-extras --no-header --allow-unsafe --no-emit-index-url --no-emit-find-links requirements.in -o requirements.txt
	$(BIN)/pip-compile -q --strip-extras --no-header --allow-unsafe --no-emit-index-url --no-emit-find-links requirements-dev.in -o requirements-dev.txt

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
