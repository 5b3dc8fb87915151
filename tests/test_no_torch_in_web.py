"""The web process never imports torch: only Celery tasks import ml's model code, lazily."""
import subprocess
import sys


def test_importing_web_entry_points_leaves_torch_unloaded():
    code = (
        "import os, sys; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'webapp.settings');"
        "import django; django.setup();"
        "import webapp.urls, webapp.wsgi, study.views, study.tasks;"
        "from django.urls import get_resolver; get_resolver().url_patterns;"
        "loaded = sorted(m for m in sys.modules if m == 'torch' or m.startswith('torch.'));"
        "print(loaded); sys.exit(1 if loaded else 0)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, f"torch was imported by the web process: {result.stdout} {result.stderr[-2000:]}"
