# EmoStudy. Two commands on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
HOST   ?= 127.0.0.1
PORT   ?= 8000
DEMO_MODEL := var/models/demo.pt

.PHONY: install run test test-fast lint demo-model migrate clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,ml]'
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

$(DEMO_MODEL): | install
	$(PY) -m ml.demo_model --out $(DEMO_MODEL)

demo-model: install
	$(PY) -m ml.demo_model --out $(DEMO_MODEL)

run: migrate
	@test -f $(DEMO_MODEL) || $(MAKE) --no-print-directory $(DEMO_MODEL)
	$(PY) manage.py seed_demo --base-url http://$(HOST):$(PORT)
	$(PY) manage.py run_embedded --host $(HOST) --port $(PORT)

test: install
	$(PY) -m pytest

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

test-fast: install
	$(PY) -m pytest -m "not slow and not e2e"

clean:
	rm -rf var/ .pytest_cache
