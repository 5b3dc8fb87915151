"""The embedded default: a real Celery worker process beside Django's server, no Redis needed.

    python manage.py run_embedded --host 127.0.0.1 --port 8000        (what `make run` ends with)

The worker runs the same task code as production, on the broker the settings choose: Redis when REDIS_URL
is set, otherwise kombu's filesystem transport under var/celery. Ctrl-C (or SIGTERM) stops both.
On start it registers var/models/demo.pt as the model "demo" (if present and new) and, if the demo study
has no predictions from it yet, queues a job so the comparison view has something to show.
"""
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

from study.errors import DomainError


class Command(BaseCommand):
    help = "Serve the site and run a Celery worker beside it (the embedded default of `make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
        parser.add_argument("--port", type=int, default=8000, help="port to serve on")
        parser.add_argument("--no-demo-model", action="store_true", help="do not register/predict the demo model")

    def handle(self, *args, **opts):
        base = f"http://{opts['host']}:{opts['port']}"
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", "gpu,default",
                                   "--concurrency", "1", "--loglevel", "WARNING", "-n", "embedded@%h"],
                                  cwd=settings.BASE_DIR)
        web = subprocess.Popen([sys.executable, "manage.py", "runserver", f"{opts['host']}:{opts['port']}",
                                "--noreload"], cwd=settings.BASE_DIR)
        children = [worker, web]

        def stop(*_):
            for child in children:
                if child.poll() is None:
                    child.terminate()

        signal.signal(signal.SIGTERM, stop)
        broker = "Redis" if settings.REDIS_URL else "filesystem broker in var/celery"
        self.stdout.write(self.style.SUCCESS(
            f"\nEmoStudy is running (Celery worker on the {broker}).\n"
            f"  participant link : {base}/s/demo/\n"
            f"  researcher pages : {base}/studies/\n"
            f"  models and jobs  : {base}/models/\n"
            f"  admin            : {base}/admin/\n"
            "Press Ctrl-C to stop.\n"))
        self._resume_unfinished_jobs()
        if not opts["no_demo_model"]:
            threading.Thread(target=self._demo_model, daemon=True).start()
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            stop()
            for child in children:
                try:
                    child.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    child.kill()
        if web.returncode not in (0, None, -signal.SIGTERM, -signal.SIGINT) and web.returncode:
            raise CommandError(f"the web server exited with code {web.returncode}")

    def _resume_unfinished_jobs(self) -> None:
        """The filesystem broker never redelivers: queue again jobs a previous run left unfinished."""
        from study.services.predictions import prediction_jobs_requeue_unfinished

        resumed = prediction_jobs_requeue_unfinished()
        if resumed:
            self.stdout.write(f"resuming unfinished prediction job(s): {', '.join(map(str, resumed))}")

    def _demo_model(self) -> None:
        """Register the demo checkpoint and predict the demo study once; failures are reported, not fatal."""
        from study.models import ModelVersion, Prediction, Study
        from study.services.predictions import prediction_job_start

        path = Path(settings.DEMO_MODEL_PATH)
        if not path.is_file():
            self.stdout.write(f"(no demo model at {path}; `make demo-model` builds one)")
            return
        try:
            from study.management.commands.seed_demo import ADMIN_USERNAME

            # Demo models belong to the demo admin and are public, so every researcher can run them.
            call_command("register_model", str(path), name="demo", owner=ADMIN_USERNAME, public=True, demo=True,
                         if_missing=True, timeout=300,
                         notes="Small ULDL model trained on synthetic faces by `make demo-model`.")
            model_version = ModelVersion.objects.filter(name="demo", owner__username=ADMIN_USERNAME,
                                                        status=ModelVersion.Status.VALID).first()
            study = Study.objects.filter(slug="demo").first()
            if model_version and study and not Prediction.objects.filter(model_version=model_version,
                                                                         stimulus__study=study).exists():
                job = prediction_job_start(study=study, model_version=model_version)
                self.stdout.write(f"queued demo predictions (job {job.pk})")
        except (CommandError, DomainError) as error:
            self.stderr.write(f"demo model: {error}")
        finally:
            from django.db import connection

            connection.close()
