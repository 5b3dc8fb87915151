"""Time a first run: `make run` in a checkout, until `/` answers and until the demo model is ready.

    python bench/first_run.py /tmp/fresh-clone --port 8731            (stops `make run` when done)

Reads the checkout's own SQLite database (var/emostudy.sqlite3) for the first-run steps and predictions, and
prints seconds since `make run` started: first answer of `/`, demo model registered and valid, demo study
predictions done. The install step is whatever `make run` does in that checkout (skipped if its .venv is
already installed), so say which when quoting the numbers.
"""
from __future__ import annotations

import argparse
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path


def answered(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def query(db: Path, sql: str):
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as connection:
            return connection.execute(sql).fetchone()
    except sqlite3.Error:
        return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path)
    parser.add_argument("--port", type=int, default=8731)
    parser.add_argument("--timeout", type=float, default=3600, help="give up after this many seconds")
    parser.add_argument("--log", type=Path, default=None, help="where `make run`'s output goes")
    args = parser.parse_args()
    db = args.checkout / "var" / "emostudy.sqlite3"
    log = open(args.log or args.checkout / "first_run.log", "w")
    started = time.monotonic()
    process = subprocess.Popen(["make", "run", f"PORT={args.port}"], cwd=args.checkout, stdout=log,
                               stderr=subprocess.STDOUT, start_new_session=True)
    marks: dict[str, float] = {}

    def mark(name: str) -> None:
        if name not in marks:
            marks[name] = time.monotonic() - started
            print(f"{marks[name]:8.1f} s  {name}", flush=True)

    try:
        while time.monotonic() - started < args.timeout:
            if process.poll() is not None:
                print(f"make run exited with {process.returncode}; see {log.name}", file=sys.stderr)
                return 1
            if "first answer of /" not in marks and answered(f"http://127.0.0.1:{args.port}/"):
                mark("first answer of /")
            step = query(db, "select state, done, total from study_setupstep where key = 'model:demo'")
            if step and step[0] == "failed":
                print(f"the demo step failed; see {log.name}", file=sys.stderr)
                return 1
            valid = query(db, "select count(*) from study_modelversion where name = 'demo' and status = 'valid'")
            if valid and valid[0]:
                mark("demo model registered and valid")
            done = query(db, "select count(*) from study_predictionjob j join study_modelversion m "
                             "on m.id = j.model_version_id where m.name = 'demo' and j.state = 'done'")
            if done and done[0]:
                mark("demo study predictions done")
                return 0
            time.sleep(1)
        print("timed out", file=sys.stderr)
        return 1
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


if __name__ == "__main__":
    raise SystemExit(main())
