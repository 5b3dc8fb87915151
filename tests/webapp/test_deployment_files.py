"""The deployment files keep their promises: a web image without torch, restart policies, healthchecks on
the health endpoints, gunicorn gthread configured from the environment, S3 media from settings alone."""
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]


def _stage(name: str) -> str:
    text = (ROOT / "Dockerfile").read_text()
    start = text.index(f" AS {name}\n")
    end = text.find("\nFROM ", start)
    return text[start:end if end != -1 else None]


def test_torch_is_only_in_the_ml_extra():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert not [d for d in project["dependencies"] if d.startswith(("torch", "torchvision"))]
    extras = {name: {re.split(r"[<>=!\[ ;]", d, maxsplit=1)[0] for d in items}
              for name, items in project["optional-dependencies"].items()}
    assert {"torch", "torchvision"} <= extras.pop("ml")
    assert not [name for name, packages in extras.items() if packages & {"torch", "torchvision"}]


def test_the_web_image_installs_no_ml_extra_and_the_worker_image_does():
    assert 'pip install -e .' in _stage("web") and "[ml" not in _stage("web")
    assert '".[ml,faces,onnx]"' in _stage("worker")  # the demo's face detector, the FER baseline, ONNX models
    assert "--no-deps -r requirements-faces.txt" in _stage("worker")
    for service in ("web", "migrate", "beat"):
        assert SERVICES[service]["build"]["target"] == "web", service
    assert SERVICES["worker"]["build"]["target"] == "worker"


def test_every_long_running_service_restarts_and_has_a_healthcheck():
    for name, service in SERVICES.items():
        if name == "migrate":
            assert service["restart"] == "no"
            continue
        assert service["restart"] in ("unless-stopped", "always"), name
        if name != "beat":
            assert "healthcheck" in service, name
    assert "/readyz/" in " ".join(SERVICES["web"]["healthcheck"]["test"])


def test_web_runs_gunicorn_with_the_environment_config():
    assert SERVICES["web"]["command"][:3] == ["gunicorn", "-c", "webapp/gunicorn_conf.py"]


def _gunicorn_config(**environment) -> dict:
    result = subprocess.run([str(Path(sys.executable).with_name("gunicorn")), "--print-config", "-c",
                             "webapp/gunicorn_conf.py", "webapp.wsgi"], cwd=ROOT, env={**os.environ, **environment},
                            capture_output=True, text=True, timeout=60)
    config = dict(line.split(" = ", 1) for line in result.stdout.splitlines() if " = " in line)
    return {key.strip(): value.strip() for key, value in config.items()}


@pytest.mark.slow
def test_gunicorn_config_is_gthread_and_read_from_the_environment():
    config = _gunicorn_config(WEB_WORKERS="2", WEB_THREADS="16", WEB_TIMEOUT="45")
    assert (config["worker_class"], config["workers"], config["threads"], config["timeout"]) == (
        "gthread", "2", "16", "45")
    # The app is imported once in the master: a restarted server or a replaced worker is up in about a second
    # instead of every worker importing Django, numpy and scipy (bench/RESULTS.md, restart-web).
    assert config["preload_app"] == "True"
    assert _gunicorn_config(WEB_PRELOAD="false")["preload_app"] == "False"


@pytest.mark.slow
def test_s3_media_is_chosen_by_settings_alone():
    code = ("import django, json; django.setup(); from django.conf import settings;"
            "print(json.dumps(settings.STORAGES['default']))")
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings", "S3_BUCKET": "emostudy-media",
           "S3_ENDPOINT_URL": "https://minio.internal:9000", "S3_REGION": "eu-west-1"}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    import json

    storage = json.loads(result.stdout.strip().splitlines()[-1])
    assert storage["BACKEND"] == "storages.backends.s3.S3Storage"
    assert storage["OPTIONS"]["bucket_name"] == "emostudy-media"
    assert storage["OPTIONS"]["endpoint_url"] == "https://minio.internal:9000"
    assert storage["OPTIONS"]["default_acl"] is None


def test_the_web_image_collects_static_with_the_debug_off_storage():
    """Collected with DEBUG on, the image would lack the manifest (hashed names) and gzip copies it serves from."""
    stage = _stage("web")
    assert re.search(r"DEBUG=false [^\n]*\\\n\s*python manage.py collectstatic --noinput", stage)
