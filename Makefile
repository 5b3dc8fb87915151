# EmoStudy. Two commands on a fresh machine: `make run` and `make test`.
# `make run` installs the base (web) dependencies plus the `ml` extra (torch, for the embedded worker);
# `make test` adds the `dev` extra (pytest, Playwright, ...). The web process itself never needs torch.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
HOST   ?= 127.0.0.1
PORT   ?= 8000
DEMO_MODEL := var/models/demo.pt

.PHONY: install install-dev run test test-fast lint demo-model migrate clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[ml]'
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) pyproject.toml
	$(PY) -m pip install -q -e '.[ml,dev]'
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

# Optional: `make run` builds the demo model in its background worker when it is missing.
demo-model: install
	$(PY) -m ml.demo_model --out $(DEMO_MODEL)

run: migrate
	$(PY) manage.py seed_demo --base-url http://$(HOST):$(PORT)
	$(PY) manage.py run_embedded --host $(HOST) --port $(PORT)

test: install-dev
	$(PY) -m pytest

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

test-fast: install-dev
	$(PY) -m pytest -m "not slow and not e2e"

clean:
	rm -rf var/ .pytest_cache
