# Everything needs only Python 3.11 on the machine: the first target run
# creates .venv and installs the pinned dependencies into it.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000
# The app logs every request and socket itself, without query strings (no
# credential may reach a log): uvicorn's access log is off, and its other
# lines (a WebSocket handshake prints its URL) lose their query strings
# (config/uvicorn-log.json). X-Forwarded-For is not trusted unless a proxy is
# configured (README).
UVICORN_FLAGS := --lifespan off --no-access-log --no-proxy-headers --log-config config/uvicorn-log.json

.PHONY: run worker test lint format migrate bench clean

run: $(VENV)/.runtime .env  ## Migrate and serve HTTP + WebSocket on http://$(HOST):$(PORT)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput -v0
	$(BIN)/uvicorn config.asgi:application --host $(HOST) --port $(PORT) $(UVICORN_FLAGS)

# The background workers beside `make run`: one quoted entry each, a Python
# script or `manage.py <command>` with its arguments. They start together; Ctrl-C
# (or SIGTERM to make) stops them all gracefully. The outbox relay needs
# BROKER_URL (.env).
WORKERS := "manage.py relay_events"

worker: $(VENV)/.runtime .env  ## Run the background workers (the outbox relay to RabbitMQ)
	$(BIN)/python manage.py migrate --noinput
	@pids=""; trap 'kill $$pids 2>/dev/null; wait' INT TERM; \
	for worker in $(WORKERS); do $(BIN)/python $$worker & pids="$$pids $$!"; done; \
	wait

test: $(VENV)/.dev  ## Run the whole suite (SQLite by default; DATABASE_URL for PostgreSQL)
	$(BIN)/pytest $(PYTEST_ARGS)

lint: $(VENV)/.dev  ## ruff, the type checker (mypy), the import layers (.importlinter), migrations in step
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run --settings=config.settings_test

format: $(VENV)/.dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

migrate: $(VENV)/.runtime .env
	$(BIN)/python manage.py migrate --noinput

.env: | $(VENV)/.runtime
	$(BIN)/python -m config.envfile .env.example .env

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.runtime: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: requirements.txt requirements-dev.txt clients/python/pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(VENV)/.runtime

bench: $(VENV)/.runtime  ## Seed PostgreSQL, load the servers, write bench/RESULTS.md (~13 min)
	$(BIN)/python bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) staticfiles .pytest_cache .ruff_cache
