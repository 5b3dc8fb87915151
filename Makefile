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
BASELINE_MODEL := var/models/fer_mini_xception.pt

.PHONY: install install-dev run test test-fast lint demo-model baseline-model migrate clean messages

$(STAMP): pyproject.toml requirements-faces.txt
	@echo "== installing EmoStudy's dependencies into $(VENV) (the first time takes several minutes: torch is large)"
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[ml,faces,onnx]'
	$(PY) -m pip install -q --no-deps -r requirements-faces.txt
	touch $(STAMP)

$(DEV_STAMP): $(STAMP) pyproject.toml
	@echo "== installing the test tools (pytest, Playwright, ruff, ...) into $(VENV)"
	$(PY) -m pip install -q -e '.[ml,faces,onnx,dev]'
	touch $(DEV_STAMP)

install: $(STAMP)

install-dev: $(DEV_STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

# Optional: `make run` builds the demo model in its background worker when it is missing.
demo-model: install
	$(PY) -m ml.demo_model --out $(DEMO_MODEL)

# Optional: `make run` converts the FER2013 baseline in its background worker (first run) when it is missing.
baseline-model: install
	$(PY) -m ml.fer_baseline --out $(BASELINE_MODEL)

# Serves at once: the demo study is seeded and the demo model built in the background (run_embedded --seed-demo).
run: migrate
	$(PY) manage.py run_embedded --host $(HOST) --port $(PORT) --seed-demo

test: install-dev
	$(PY) -m pytest

lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

test-fast: install-dev
	$(PY) -m pytest -m "not slow and not e2e"

# Participant-page translations: collect the marked strings into locale/<lang>/LC_MESSAGES/django.po,
# then compile the .mo in pure Python (no GNU gettext needed). Both files are committed.
messages: install
	$(PY) manage.py makemessages -l de --no-location --ignore 'tests/*' --ignore 'ml/*' --ignore 'bench/*' --ignore 'var/*'
	$(PY) manage.py compile_translations

clean:
	rm -rf var/ .pytest_cache
