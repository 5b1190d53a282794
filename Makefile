# The two commands a new user needs: `make run` starts the desk, `make test` runs the suite.
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint bench

$(BIN)/python:
	python3 -m venv $(VENV) || { apt-get install -y python3-venv && python3 -m venv $(VENV); }
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.run-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test-installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

run: $(VENV)/.run-installed
	$(BIN)/consultant db init
	$(BIN)/consultant codes load icd10cm
	$(BIN)/consultant run

lint: $(VENV)/.test-installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(VENV)/.test-installed lint
	./scripts/test-services
	$(BIN)/pytest

bench: $(VENV)/.test-installed
	./scripts/test-services
	$(BIN)/python bench/codes_bench.py
	$(BIN)/python bench/outbox_bench.py
	$(BIN)/python bench/worker_bench.py
	$(BIN)/python bench/send_parts_bench.py
	$(BIN)/python bench/intake_bench.py
