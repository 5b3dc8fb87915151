"""The embedded default: a real Celery worker process beside Django's server, no Redis needed.

    python manage.py run_embedded --host 127.0.0.1 --port 8000 --seed-demo     (what `make run` ends with)

Unless the environment says otherwise, both serve with DEBUG off (webapp.embedded: a generated secret key in
var/secret_key, local host names, static files collected into var/staticfiles); DEBUG=true turns it back on.
The worker runs the same task code as production, on the broker the settings choose: Redis when REDIS_URL
is set, otherwise kombu's filesystem transport under var/celery. Ctrl-C (or SIGTERM) stops both.
With --seed-demo (as `make run` does) it runs seed_demo in the background while the site already serves.
Then it queues the first-run bootstrap (study.services.first_run): the worker builds the demo model if
var/models/demo.pt is missing, registers it with its λ export, and queues the demo study's predictions,
while the site already serves; this command prints the progress, the models page shows it.
"""
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from study.errors import DomainError
from webapp.embedded import debug_is_on, embedded_environment

STOP_GRACE_SECONDS = 15  # how long a stopping worker may finish its current job before it is killed


def stop_on_signals(children: list) -> None:
    """SIGTERM, and SIGHUP (the terminal closed): ask every child to stop, so that the main loop ends and _stop
    gives the worker its grace time. Without SIGHUP, closing the terminal left the worker (a process group of its
    own, which the terminal's hangup does not reach) running and reading the queue beside the next `make run`'s."""
    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.terminate()

    for number in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, stop)


class Command(BaseCommand):
    help = "Serve the site and run a Celery worker beside it (the embedded default of `make run`)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1", help="address to serve on")
        parser.add_argument("--port", type=int, default=8000, help="port to serve on")
        parser.add_argument("--seed-demo", action="store_true",
                            help="run seed_demo in the background once the site serves (what `make run` does), "
                                 "so the first answer does not wait for the demo's faces")
        parser.add_argument("--demo-count", type=int, default=200, help="synthetic faces of the demo study (--seed-demo)")
        parser.add_argument("--worker-processes", type=int, default=2,
                            help="embedded worker processes: with 2, the first run's model training never blocks "
                                 "the demo page, uploads or prediction jobs")
        parser.add_argument("--no-demo-model", action="store_true",
                            help="skip the first-run bootstrap (building/registering the demo model and its predictions)")

    def handle(self, *args, **opts):
        base = f"http://{opts['host']}:{opts['port']}"
        env = embedded_environment(os.environ, opts["host"], settings.VAR_DIR)
        debug = debug_is_on(env)
        if not debug:
            self._collect_static(env)
        self._resume_unfinished_jobs()  # before the worker starts, while the broker's folder holds what it has
        worker = subprocess.Popen([sys.executable, "-m", "celery", "-A", "webapp", "worker", "-Q", "gpu,default",
                                   "--concurrency", str(max(1, opts["worker_processes"])), "--loglevel", "WARNING",
                                   "-n", "embedded@%h",
                                   "--beat", "--schedule", str(Path(settings.VAR_DIR) / "celery" / "beat-schedule")],
                                  cwd=settings.BASE_DIR, env=env, process_group=0)
        worker.leads_its_group = True  # Celery's pool and beat processes go with it when _stop has to kill it
        web = subprocess.Popen([sys.executable, "manage.py", "runserver", f"{opts['host']}:{opts['port']}",
                                "--noreload"], cwd=settings.BASE_DIR, env={**env, "WEB_IMPORT_CROWD_KIT_AT_START": "1"})
        children = [worker, web]
        stop_on_signals(children)
        broker = "Redis" if settings.REDIS_URL else "filesystem broker in var/celery"
        self.stdout.write(self.style.SUCCESS(
            f"\nEmoStudy is running (Celery worker on the {broker}).\n"
            f"  home page        : {base}/\n"
            f"  live demo page   : {base}/demo/\n"
            f"  participant link : {base}/s/demo/\n"
            f"  researcher pages : {base}/studies/\n"
            f"  models and jobs  : {base}/models/\n"
            f"  admin            : {base}/admin/\n"
            + ("DEBUG is on (Django's debug pages and tracebacks).\n" if debug else
               "DEBUG is off; start with DEBUG=true for Django's debug pages.\n")
            + "Press Ctrl-C to stop.\n"))
        seed = {"count": opts["demo_count"]} if opts["seed_demo"] else None
        threading.Thread(target=self._background, args=(base, seed, not opts["no_demo_model"]), daemon=True).start()
        try:
            while all(child.poll() is None for child in children):
                time.sleep(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self._stop(children)
        if web.returncode not in (0, None, -signal.SIGTERM, -signal.SIGINT, -signal.SIGHUP):
            raise CommandError(f"the web server exited with code {web.returncode}")

    def _stop(self, children: list) -> None:
        """Ctrl-C or SIGTERM: the web server stops at once; the worker may be in the middle of a job (the first run
        trains for minutes) and gets STOP_GRACE_SECONDS to finish it, then is killed with its process group (killed
        alone, Celery's pool or beat process outlived it). Said on the terminal, so that the wait after Ctrl-C is not
        silent. The worker has a process group of its own, so Ctrl-C reaches it only from here."""
        running = [child for child in children if child.poll() is None]
        if running:
            self.stdout.write(f"\nStopping EmoStudy: the worker gets up to {STOP_GRACE_SECONDS} s to finish its current "
                              "job (prediction jobs, upload imports and first-run models left unfinished start again "
                              "at the next start)…")
        for child in running:
            child.terminate()
        for child in children:
            try:
                child.wait(timeout=STOP_GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                if getattr(child, "leads_its_group", False):
                    os.killpg(child.pid, signal.SIGKILL)
                else:
                    child.kill()
                child.wait()

    def _collect_static(self, env: dict) -> None:
        """With DEBUG off WhiteNoise serves only var/staticfiles: collect it (hashed names, a gzip copy of each)."""
        self.stdout.write("collecting static files (hashed names, gzip-compressed copies) into "
                          f"{settings.STATIC_ROOT} ...")
        done = subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "--verbosity", "0"],
                              cwd=settings.BASE_DIR, env=env)
        if done.returncode:
            raise CommandError(f"collectstatic failed (exit {done.returncode}); DEBUG=true serves without it")

    def _resume_unfinished_jobs(self) -> None:
        """The filesystem broker never redelivers: queue again jobs and uploads a previous run left unfinished."""
        from study.services.predictions import prediction_jobs_requeue_unfinished
        from study.services.uploads import upload_batches_requeue_unfinished

        resumed = prediction_jobs_requeue_unfinished()
        if resumed:
            self.stdout.write(f"resuming unfinished prediction job(s): {', '.join(map(str, resumed))}")
        uploads = upload_batches_requeue_unfinished()
        if uploads:
            self.stdout.write(f"resuming unfinished upload import(s): {', '.join(map(str, uploads))}")

    def _background(self, base: str, seed: dict | None, bootstrap: bool) -> None:
        """While the site already serves: seed the demo study (seed_demo options, if any), then the first-run
        bootstrap (which predicts the demo study, so it comes second)."""
        if seed is not None:
            from django.core.management import call_command
            from django.db import connection

            try:
                call_command("seed_demo", base_url=base, stdout=self.stdout._out, stderr=self.stderr._out, **seed)
            except CommandError as error:
                self.stderr.write(f"seed_demo: {error}")
            finally:
                connection.close()
        if bootstrap:
            self._first_run()

    def _first_run(self) -> None:
        """Queue the first-run bootstrap (study.services.first_run) and print its progress until every step ends."""
        from django.db import connection

        from study.models import SetupStep
        from study.services.first_run import first_run_queue, first_run_steps

        try:
            pending = first_run_queue()
            if not pending:
                return
            self.stdout.write("[first run] building/registering in the background worker: "
                              + ", ".join(step.title for step in pending) + " (progress also on /models/)")
            seen: dict[int, tuple] = {}
            while True:
                steps = first_run_steps()
                for step in steps:
                    state = (step.state, step.done, step.total, step.message)
                    if seen.get(step.pk) != state:
                        seen[step.pk] = state
                        count = f" {step.done}/{step.total}" if step.total else ""
                        self.stdout.write(f"[first run] {step.title}: {step.get_state_display().lower()}{count}"
                                          f"{' — ' + step.message if step.message else ''}")
                if all(step.state in (SetupStep.State.DONE, SetupStep.State.FAILED) for step in steps):
                    return
                time.sleep(2)
        except DomainError as error:
            self.stderr.write(f"[first run] could not start: {error.message}")
        finally:
            connection.close()
