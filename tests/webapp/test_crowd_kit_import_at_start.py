"""Server processes import crowd-kit at start, so the first participants page does not pay seconds for it."""
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _run(code: str, **environment) -> dict:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env={**os.environ, **environment},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


GUNICORN_MASTER = """
import json, sys, runpy
config = runpy.run_path("webapp/gunicorn_conf.py")
config["on_starting"](None)
print(json.dumps({"crowdkit": "crowdkit.aggregation" in sys.modules}))
"""


def test_gunicorn_master_imports_crowd_kit_before_forking_when_the_app_is_preloaded():
    assert _run(GUNICORN_MASTER, WEB_PRELOAD="true") == {"crowdkit": True}
    assert _run(GUNICORN_MASTER, WEB_PRELOAD="false") == {"crowdkit": False}


DJANGO_START = """
import json, sys, threading, django
django.setup()
for thread in threading.enumerate():
    if thread.name == "import-crowd-kit":
        thread.join(60)
print(json.dumps({"crowdkit": "crowdkit.aggregation" in sys.modules}))
"""


def test_make_runs_web_server_imports_crowd_kit_in_the_background_and_other_processes_do_not():
    settings = {"DJANGO_SETTINGS_MODULE": "webapp.settings"}
    assert _run(DJANGO_START, WEB_IMPORT_CROWD_KIT_AT_START="1", **settings) == {"crowdkit": True}
    assert _run(DJANGO_START, WEB_IMPORT_CROWD_KIT_AT_START="", **settings) == {"crowdkit": False}


def test_run_embedded_asks_its_web_server_for_the_import():
    source = (ROOT / "study/management/commands/run_embedded.py").read_text()
    assert '"WEB_IMPORT_CROWD_KIT_AT_START": "1"' in source
