"""Where a vote cycle's time goes inside the web process: in-process timings and cProfile of the hot requests.

    DATABASE_URL=postgres://postgres@127.0.0.1:55500/load13 .venv/bin/python bench/profile_vote.py [--profile]

Django's test client against the real database, with the production middleware (DEBUG off, CSP, sessions,
django-axes). Times, per request kind, the median wall and CPU time (of this thread: the database server's work is not in
it) of --n requests: the constant /healthz/ view (the
baseline), the JSON trial state and vote (what bench/load.py drives) and the browser's vote (POST of the trial
form, then GET of the next trial page). Prints each as a ratio to /healthz/, the mean CPU time the database
backend spent on it (where PostgreSQL runs on this machine: its /proc/PID/schedstat) and the SQL statements it ran
(BEGIN and COMMIT not counted). With
--profile, the top functions by cumulative time for the vote and the trial page.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DEBUG", "false")
os.environ.setdefault("SECRET_KEY", "bench-" + "x" * 50)
os.environ.setdefault("ALLOWED_HOSTS", "testserver")
os.environ.setdefault("PARTICIPANT_STARTS_PER_CLIENT", "0")
os.environ.setdefault("LOG_LEVEL", "WARNING")
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200, help="requests of each kind")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--profile-clock", choices=["wall", "cpu"], default="cpu",
                        help="what --profile counts: this thread's CPU time (default; waits on the database and "
                             "the network cost nothing) or wall time")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("set DATABASE_URL=postgres://... (the real stack)")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection
    from django.test import Client

    call_command("migrate", verbosity=0)
    sys.path.insert(0, str(ROOT / "bench"))
    from _load_setup import create

    slug = f"prof-{int(time.time())}"
    participants_needed = args.n // 3 + 10  # two vote kinds, each timed and profiled, 20 votes per participant
    create(slug, max(100, args.n), participants_needed)

    csrf_re = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')

    join_slug = slug + "-join"  # joins hold places: a study of their own
    create(join_slug, 100, 3 * args.n)

    def new_participant(study_slug: str = slug) -> Client:
        client = Client(enforce_csrf_checks=True, HTTP_HOST="testserver")
        page = client.get(f"/s/{study_slug}/").content.decode()
        token = csrf_re.search(page).group(1)
        client.post(f"/s/{study_slug}/consent/", {"consent": "agree", "csrfmiddlewaretoken": token})
        client.last_response = client.post(f"/s/{study_slug}/start/", {"csrfmiddlewaretoken": token})
        client.csrf = client.cookies["csrftoken"].value
        return client

    pool: list = []

    def participant_with_trial():
        """A participant with an unanswered trial, and that trial's image."""
        while True:
            if not pool:
                pool.append(new_participant())
            client = pool[-1]
            state = client.get(f"/api/s/{slug}/trial/").json()
            if state["current"]:
                return client, state["current"]["stimulus"]
            pool.pop()

    def api_vote():
        client, stimulus = participant_with_trial()
        return lambda: client.post(f"/api/s/{slug}/votes/", {"stimulus": stimulus, "label": "Fear", "response_ms": 900},
                                   content_type="application/json", HTTP_X_CSRFTOKEN=client.csrf)

    def form_vote():
        client, stimulus = participant_with_trial()
        return lambda: client.post(f"/s/{slug}/trial/", {"stimulus": stimulus, "label": "Fear", "response_ms": 900,
                                                         "csrfmiddlewaretoken": client.csrf})

    def api_trial():
        client, _ = participant_with_trial()
        return lambda: client.get(f"/api/s/{slug}/trial/")

    def page_trial():
        client, _ = participant_with_trial()
        return lambda: client.get(f"/s/{slug}/trial/")

    def join():
        return lambda: new_participant(join_slug).last_response

    anonymous = Client(HTTP_HOST="testserver")
    kinds = {
        "/healthz/ (constant)": lambda: (lambda: anonymous.get("/healthz/")),
        "GET /api/s/…/trial/": api_trial,
        "POST /api/s/…/votes/": api_vote,
        "GET /s/…/trial/ (page)": page_trial,
        "POST /s/…/trial/ (form)": form_vote,
        "join (entry, consent, Start)": join,
    }

    def backend_cpu_ns() -> tuple[int, int] | None:
        """(pid, CPU ns so far) of this connection's PostgreSQL backend, where it runs on this machine (its
        /proc/PID/schedstat); None elsewhere."""
        if connection.connection is None:
            return None
        pid = connection.connection.info.backend_pid
        try:
            with open(f"/proc/{pid}/schedstat") as stat:
                return pid, int(stat.read().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    results = {}
    for name, prepare in kinds.items():
        prepare()()  # warm-up (also checks the request works)
        queries: list = []  # counted with an execute wrapper: each request start resets connection.queries
        call = prepare()
        with connection.execute_wrapper(lambda execute, sql, *a, seen=queries: seen.append(sql) or execute(sql, *a)):
            statuses = {call().status_code}
        times, cpu, db_cpu = [], [], []
        for _ in range(args.n):
            call = prepare()  # set-up (a participant with an unanswered trial) is not timed
            started, started_cpu, db_before = time.perf_counter(), time.thread_time(), backend_cpu_ns()
            statuses.add(call().status_code)
            times.append((time.perf_counter() - started) * 1000)
            cpu.append((time.thread_time() - started_cpu) * 1000)
            db_after = backend_cpu_ns()
            if db_before and db_after and db_before[0] == db_after[0]:  # the same backend (no reconnect)
                db_cpu.append((db_after[1] - db_before[1]) / 1e6)
        results[name] = (statistics.median(times), statistics.median(cpu),
                         statistics.mean(db_cpu) if db_cpu else None, len(queries), statuses)
    base, base_cpu = results["/healthz/ (constant)"][:2]
    print(f"{'request':30} {'wall ms':>8} {'÷ healthz':>9} {'CPU ms':>8} {'÷ healthz':>9} {'DB CPU ms':>9} "
          f"{'queries':>8}  status")
    for name, (median, median_cpu, db_ms, n_queries, statuses) in results.items():
        print(f"{name:30} {median:8.2f} {median / base:9.1f} {median_cpu:8.2f} {median_cpu / base_cpu:9.1f} "
              f"{'-' if db_ms is None else f'{db_ms:.2f}':>9} {n_queries:8d}  {sorted(statuses)}")
    if args.profile:
        for name in list(kinds)[1:]:
            clock = time.thread_time if args.profile_clock == "cpu" else time.perf_counter
            profiler = cProfile.Profile(clock)
            for _ in range(args.n):
                call = kinds[name]()
                profiler.enable()
                call()
                profiler.disable()
            out = io.StringIO()
            pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(45)
            pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
            print(f"\n===== {name}: {args.n} requests, {args.profile_clock} time =====")
            print(out.getvalue())


if __name__ == "__main__":
    main()
