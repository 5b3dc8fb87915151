"""run_embedded's first-run watcher: it queues the bootstrap and prints each step's progress to the terminal."""
import io
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.core.management.base import OutputWrapper

from study.management.commands.run_embedded import Command
from study.models import SetupStep

pytestmark = pytest.mark.django_db


def test_the_terminal_shows_each_step_until_it_finishes(monkeypatch):
    step = SetupStep.objects.create(key="model:demo", title="Demo model", state=SetupStep.State.DONE, done=8,
                                    total=8, message="ready; predictions queued for demo (job 1)")
    monkeypatch.setattr("study.services.first_run.first_run_queue", lambda: [step])
    monkeypatch.setattr("study.services.first_run.first_run_steps", lambda: [step])
    out = io.StringIO()
    command = Command(stdout=OutputWrapper(out), stderr=OutputWrapper(io.StringIO()))
    command._first_run()
    text = out.getvalue()
    assert "[first run] building/registering in the background worker: Demo model" in text
    assert "[first run] Demo model: done 8/8 — ready; predictions queued for demo (job 1)" in text


def test_nothing_is_printed_when_everything_is_ready(monkeypatch):
    monkeypatch.setattr("study.services.first_run.first_run_queue", lambda: [])
    out = io.StringIO()
    Command(stdout=OutputWrapper(out), stderr=OutputWrapper(io.StringIO()))._first_run()
    assert out.getvalue() == ""


def test_a_broker_that_refuses_the_task_is_reported_not_raised(monkeypatch):
    from study.errors import BrokerUnavailable

    def refuse():
        raise BrokerUnavailable("the task queue is unreachable")

    monkeypatch.setattr("study.services.first_run.first_run_queue", refuse)
    err = io.StringIO()
    Command(stdout=OutputWrapper(io.StringIO()), stderr=OutputWrapper(err))._first_run()
    assert "[first run] could not start: the task queue is unreachable" in err.getvalue()


@pytest.mark.django_db(transaction=True)
def test_seed_demo_runs_in_the_background_before_the_bootstrap(monkeypatch):
    from study.models import Study

    order = []
    monkeypatch.setattr(Command, "_first_run", lambda self: order.append(Study.objects.filter(slug="demo").exists()))
    out = io.StringIO()
    Command(stdout=OutputWrapper(out), stderr=OutputWrapper(io.StringIO()))._background(
        "http://127.0.0.1:8123", {"count": 4}, True)
    assert order == [True]  # the demo study exists when the bootstrap (which predicts it) is queued
    assert "http://127.0.0.1:8123/s/demo/" in out.getvalue()
    assert Study.objects.get(slug="demo").stimuli.count() == 4


class FakeChild:
    """A child process of run_embedded: exits when terminated, or (stubborn) only when killed."""

    def __init__(self, stubborn=False, exited=False):
        self.stubborn, self.returncode, self.calls = stubborn, (0 if exited else None), []

    def poll(self):
        return self.returncode

    def terminate(self):
        self.calls.append("terminate")
        if not self.stubborn:
            self.returncode = -15

    def kill(self):
        self.calls.append("kill")
        self.returncode = -9

    def wait(self, timeout=None):
        if self.returncode is None and timeout is not None:
            raise subprocess.TimeoutExpired("worker", timeout)
        return self.returncode


def test_stopping_says_so_and_kills_a_worker_that_does_not_finish_in_time(monkeypatch):
    """After Ctrl-C the web server has already gone; the worker, busy with a job, is asked to stop, told so on the
    terminal, and killed when it does not stop within the grace time."""
    monkeypatch.setattr("study.management.commands.run_embedded.STOP_GRACE_SECONDS", 0.01)
    web, worker = FakeChild(exited=True), FakeChild(stubborn=True)
    out = io.StringIO()
    Command(stdout=OutputWrapper(out), stderr=OutputWrapper(io.StringIO()))._stop([worker, web])
    assert "Stopping EmoStudy: the worker gets up to 0.01 s to finish its current job" in out.getvalue()
    assert worker.calls == ["terminate", "kill"] and web.calls == []


def test_stopping_is_silent_when_nothing_is_left_running():
    out = io.StringIO()
    children = [FakeChild(exited=True), FakeChild(exited=True)]
    Command(stdout=OutputWrapper(out), stderr=OutputWrapper(io.StringIO()))._stop(children)
    assert out.getvalue() == "" and all(child.calls == [] for child in children)


def test_a_worker_killed_after_the_grace_time_takes_its_child_processes_with_it(monkeypatch, tmp_path):
    """A real process that ignores SIGTERM (as a Celery worker busy with a job does for a while) and has a child of
    its own (Celery's pool, beat): after the grace time both are gone, not only the process that was started."""
    monkeypatch.setattr("study.management.commands.run_embedded.STOP_GRACE_SECONDS", 0.5)
    pid_file = tmp_path / "grandchild.pid"
    script = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
              "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
              f"open({str(pid_file)!r}, 'w').write(str(child.pid)); time.sleep(60)")
    worker = subprocess.Popen([sys.executable, "-c", script], process_group=0)
    worker.leads_its_group = True
    grandchild = written_pid(pid_file)
    Command(stdout=OutputWrapper(io.StringIO()), stderr=OutputWrapper(io.StringIO()))._stop([worker])
    assert worker.returncode == -9
    assert gone(grandchild), "the worker's child outlived it"


def written_pid(pid_file: Path) -> int:
    """The pid a child process writes to `pid_file` once it has started (waits up to 10 s)."""
    for _ in range(200):
        if pid_file.exists() and pid_file.read_text():
            break
        time.sleep(0.05)
    return int(pid_file.read_text())


def gone(pid: int) -> bool:
    """Whether `pid` has exited (or is a zombie) within 5 s."""
    for _ in range(100):
        if not running(pid):
            return True
        time.sleep(0.05)
    return False


def running(pid: int) -> bool:
    """Alive and not a zombie (a killed process that nobody has reaped yet is gone for our purpose)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_start_up_queues_unfinished_prediction_jobs_and_upload_imports_again(monkeypatch):
    monkeypatch.setattr("study.services.predictions.prediction_jobs_requeue_unfinished", lambda: [4])
    monkeypatch.setattr("study.services.uploads.upload_batches_requeue_unfinished", lambda: [7, 9])
    out = io.StringIO()
    Command(stdout=OutputWrapper(out), stderr=OutputWrapper(io.StringIO()))._resume_unfinished_jobs()
    assert "resuming unfinished prediction job(s): 4" in out.getvalue()
    assert "resuming unfinished upload import(s): 7, 9" in out.getvalue()


@pytest.mark.parametrize("number", [signal.SIGHUP, signal.SIGTERM])
def test_a_closed_terminal_or_sigterm_stops_the_worker_in_its_own_process_group(number, tmp_path):
    """The worker has a process group of its own, so a terminal's hangup reaches only run_embedded: it must pass the
    stop on (the worker used to outlive a closed terminal and read the queue beside the next run's worker)."""
    pid_file = tmp_path / "worker.pid"
    script = (
        "import django, os, subprocess, sys, time; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'webapp.settings'); "
        "django.setup(); from study.management.commands.run_embedded import stop_on_signals; "
        "worker = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'], process_group=0); "
        f"open({str(pid_file)!r}, 'w').write(str(worker.pid)); stop_on_signals([worker]); "
        "[time.sleep(0.05) for _ in iter(lambda: worker.poll() is None, False)]"
    )
    runner = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[3])
    try:
        worker = written_pid(pid_file)
        runner.send_signal(number)
        assert runner.wait(timeout=10) == 0
        assert gone(worker), "the worker outlived run_embedded"
    finally:
        runner.kill()
