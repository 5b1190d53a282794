# The two commands a new user needs: `make run` starts the desk, `make test` runs the suite.
# Both install exactly the versions in the lock files (requirements.lock for the desk,
# requirements-test.lock for the desk and its tests), checked by their hashes.
VENV := .venv
BIN := $(VENV)/bin
LOCK_VENV := .venv-lock
PIP_COMPILE := $(LOCK_VENV)/bin/pip-compile --quiet --generate-hashes --allow-unsafe \
	--strip-extras --no-emit-index-url --no-emit-find-links --no-emit-trusted-host

.PHONY: run test lint bench lock

$(BIN)/python:
	python3 -m venv $(VENV) || { apt-get install -y python3-venv && python3 -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run-installed: requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

$(VENV)/.test-installed: requirements-test.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q --require-hashes -r requirements-test.lock
	$(BIN)/pip install -q --no-deps -e .
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/consultant codes load icd10cm
	$(BIN)/consultant run

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# One pytest worker per core (at most 4), each with its own servers; a file stays on one
# worker so its module's servers start once. Most of a test's time is waiting on them.
test: $(VENV)/.test-installed lint
	./scripts/test-services
	$(BIN)/pytest --numprocesses auto --maxprocesses 4 --dist loadfile

bench: $(VENV)/.test-installed
	./scripts/test-services
	$(BIN)/python bench/codes_bench.py
	$(BIN)/python bench/extraction_quality.py
	$(BIN)/python bench/routing_bench.py
	$(BIN)/python bench/outbox_bench.py
	$(BIN)/python bench/worker_bench.py
	$(BIN)/python bench/send_parts_bench.py
	$(BIN)/python bench/intake_bench.py

# After changing the dependencies in pyproject.toml: the newest versions that satisfy
# it, pinned with their hashes. `make lock UPGRADE=--upgrade` moves every pin forward.
lock:
	test -x $(LOCK_VENV)/bin/pip-compile || { python3 -m venv $(LOCK_VENV) && \
		$(LOCK_VENV)/bin/pip install -q pip-tools==7.7.0; }
	$(PIP_COMPILE) $(UPGRADE) -o requirements.lock pyproject.toml
	$(PIP_COMPILE) $(UPGRADE) --extra test -c requirements.lock -o requirements-test.lock pyproject.toml

schema.sql: $(VENV)/.run-installed consultant/migrations/versions/*.py
	$(BIN)/consultant db sql > $@
