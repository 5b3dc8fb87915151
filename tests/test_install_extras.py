"""The install pulls only what each process needs: the base for the web process, `ml` (torch) for the worker and
`make run`, `dev` (pytest, Playwright) only for `make test`."""
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _names(requirements):
    return {re.split(r"[<>=!\[ ;]", item, maxsplit=1)[0].lower() for item in requirements}


def test_base_dependencies_have_no_torch_and_no_dev_tools():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    base = _names(project["dependencies"])
    extras = {name: _names(items) for name, items in project["optional-dependencies"].items()}
    assert {"django", "celery", "numpy", "pillow"} <= base
    assert not base & {"torch", "torchvision", "pytest", "playwright", "factory-boy", "schemathesis"}
    assert {"torch", "torchvision"} <= extras["ml"]
    assert {"pytest", "pytest-django", "playwright"} <= extras["dev"]
    assert not extras["dev"] & {"torch", "torchvision"}


def test_make_run_installs_base_and_ml_and_make_test_adds_dev():
    makefile = (ROOT / "Makefile").read_text()
    stamp = makefile.split("$(STAMP): pyproject.toml", 1)[1].split("\n\n", 1)[0]
    assert "-e '.[ml]'" in stamp and "dev" not in stamp
    assert re.search(r"^run: migrate$", makefile, re.M) and re.search(r"^migrate: install$", makefile, re.M)
    assert re.search(r"^test: install-dev$", makefile, re.M) and "-e '.[ml,dev]'" in makefile
    run = makefile.split("\nrun:", 1)[1].split("\n\n", 1)[0]
    assert "ml.demo_model" not in run  # the demo model is built by the background worker, never in the foreground
