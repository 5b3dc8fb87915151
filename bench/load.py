"""Load and fault harness: N simulated participants against a real gunicorn + PostgreSQL (+ Redis) on loopback.

    .venv/bin/python bench/load.py --participants 50 --duration 60 \
        --database-url postgres://postgres@127.0.0.1:55433/hard13_bench [--fault kill-worker --fault-at 20]

Each participant consents, presses Start, then votes through the JSON API with a think time of 1.5-3 s per
trial, fetching /healthz/ (a constant view) beside each vote so both are timed under the same load. The run
is bounded by --duration. Then a short saturation phase (no think time, --saturation-threads clients) measures
the throughput of votes against that of /healthz/. Finally the database is checked: every acknowledged vote
stored (0 lost), no (participant, image) twice (0 duplicated), images balanced (votes + held places differ by
at most one). Faults: kill-worker (kill -9 one gunicorn worker), restart-web (kill -9 the whole server, start a
new one), stop-redis / freeze-redis (a private redis-server is the broker; the vote path does not use it).
A participant who meets an error retries the same vote after 0.5 s (votes are idempotent).
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COOKIE_RE = re.compile(r"(emostudy_participant_\d+)=([^;]+)")
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn (webapp/gunicorn_conf.py) as a child process, restartable."""

    def __init__(self, env: dict, port: int):
        self.env, self.port, self.process = env, port, None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "-c", "webapp/gunicorn_conf.py", "webapp.wsgi"],
            cwd=ROOT, env={**self.env, "WEB_BIND": f"127.0.0.1:{self.port}", "WEB_ACCESS_LOG": ""},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if request(self.port, "GET", "/healthz/")[0] == 200:
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError("gunicorn did not come up")

    def worker_pids(self) -> list[int]:
        out = subprocess.run(["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout
        return [int(pid) for pid in out.split()]

    def kill_all(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            self.kill_all()


def request(port: int, method: str, path: str, body: dict | None = None, headers: dict | None = None,
            form: bool = False, timeout: float = 30) -> tuple[int, str, dict]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        if body is not None and form:
            from urllib.parse import urlencode
            payload, ctype = urlencode(body), "application/x-www-form-urlencoded"
        elif body is not None:
            payload, ctype = json.dumps(body), "application/json"
        else:
            payload, ctype = None, None
        all_headers = {**(headers or {}), **({"Content-Type": ctype} if ctype else {})}
        conn.request(method, path, body=payload, headers=all_headers)
        response = conn.getresponse()
        return response.status, response.read().decode(errors="replace"), dict(response.getheaders())
    finally:
        conn.close()


class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.vote_ms: list[float] = []
        self.const_ms: list[float] = []
        self.acknowledged: set[tuple[str, str]] = set()
        self.errors: list[tuple[float, str]] = []
        self.successes: list[float] = []

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append((time.monotonic(), what))


def participant(port: int, slug: str, index: int, stop_at: float, think: tuple[float, float], rec: Recorder,
                think_enabled: bool = True) -> None:
    rng = random.Random(index)
    try:
        status, page, headers = request(port, "GET", f"/s/{slug}/?PROLIFIC_PID=bench-{index}")
        csrf_cookie = re.search(r"csrftoken=([^;]+)", headers.get("Set-Cookie", "")).group(1)
        token = CSRF_RE.search(page).group(1)
        status, _, headers = request(port, "POST", f"/s/{slug}/consent/", {"consent": "agree", "csrfmiddlewaretoken": token},
                                     headers={"Cookie": f"csrftoken={csrf_cookie}"}, form=True)
        name, value = COOKIE_RE.search(headers.get("Set-Cookie", "")).groups()
        cookies = f"csrftoken={csrf_cookie}; {name}={value}"
        vote_headers = {"Cookie": cookies, "X-CSRFToken": csrf_cookie}
        request(port, "POST", f"/s/{slug}/start/", {"csrfmiddlewaretoken": token}, headers={"Cookie": cookies}, form=True)
    except Exception as exc:  # could not even join (e.g. the server was down): counted as an error
        rec.error(f"join: {exc.__class__.__name__}")
        return
    while time.monotonic() < stop_at:
        try:
            status, body, _ = request(port, "GET", f"/api/s/{slug}/trial/", headers={"Cookie": cookies})
            if status != 200:
                raise RuntimeError(f"trial {status}")
            state = json.loads(body)
            if state["done"] or not state["current"]:
                return
            stimulus = state["current"]["stimulus"]
        except Exception as exc:
            rec.error(f"trial: {exc}")
            time.sleep(0.5)
            continue
        if think_enabled:
            time.sleep(rng.uniform(*think))
        while time.monotonic() < stop_at + 30:  # retry the same vote until it is acknowledged
            started = time.monotonic()
            try:
                status, body, _ = request(port, "POST", f"/api/s/{slug}/votes/",
                                          {"stimulus": stimulus, "label": "Fear", "response_ms": 900},
                                          headers=vote_headers)
            except Exception as exc:
                status, body = 0, exc.__class__.__name__
            elapsed = (time.monotonic() - started) * 1000
            if status == 201:
                with rec.lock:
                    rec.vote_ms.append(elapsed)
                    rec.acknowledged.add((json.loads(body)["participant"], stimulus))
                    rec.successes.append(time.monotonic())
                break
            rec.error(f"vote {status} {body[:60]}")
            time.sleep(0.5)
        if think_enabled:
            started = time.monotonic()
            try:
                if request(port, "GET", "/healthz/")[0] == 200:
                    with rec.lock:
                        rec.const_ms.append((time.monotonic() - started) * 1000)
            except Exception as exc:
                rec.error(f"healthz: {exc.__class__.__name__}")


def saturate(port: int, path: str, threads: int, seconds: float, make_call) -> float:
    count, lock, stop_at = [0], threading.Lock(), time.monotonic() + seconds

    def loop(i):
        call = make_call(i)
        while time.monotonic() < stop_at:
            if call():
                with lock:
                    count[0] += 1

    workers = [threading.Thread(target=loop, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return count[0] / seconds


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--think", type=float, nargs=2, default=(1.5, 3.0))
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--fault", choices=["none", "kill-worker", "restart-web", "stop-redis", "freeze-redis"],
                        default="none")
    parser.add_argument("--fault-at", type=float, default=20)
    parser.add_argument("--fault-for", type=float, default=10, help="seconds Redis stays stopped/frozen")
    parser.add_argument("--saturation-threads", type=int, default=16)
    parser.add_argument("--saturation-seconds", type=float, default=8)
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("--database-url postgres://... is required (the real stack)")

    workdir = Path(tempfile.mkdtemp(prefix="emostudy-load-"))
    redis_port = free_port()
    redis = subprocess.Popen(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                              "--appendonly", "no", "--dir", str(workdir)], stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    env = {**os.environ, "DATABASE_URL": args.database_url, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "DEBUG": "false", "SECRET_KEY": "bench-" + "x" * 50, "ALLOWED_HOSTS": "127.0.0.1",
           "MEDIA_ROOT": str(workdir / "media"), "PARTICIPANT_STARTS_PER_CLIENT": "0", "AXES_ENABLED": "false",
           "WEB_WORKERS": str(args.workers), "WEB_THREADS": str(args.threads), "LOG_LEVEL": "WARNING"}
    try:
        run(args, env, redis, workdir)
    finally:
        redis.kill()
        redis.wait()


def run(args, env: dict, redis: subprocess.Popen, workdir: Path) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    slug = f"load-{int(time.time())}"
    setup = subprocess.run([sys.executable, "bench/_load_setup.py", slug, str(args.images),
                            str(args.participants)], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    print(setup.stdout.strip())
    port = free_port()
    server = Server(env, port)
    server.start()
    try:
        measure(args, env, redis, server, port, slug)
    finally:
        if server.process.poll() is None:
            server.stop()


def measure(args, env: dict, redis: subprocess.Popen, server: Server, port: int, slug: str) -> None:
    rec = Recorder()
    stop_at = time.monotonic() + args.duration
    threads = [threading.Thread(target=participant, args=(port, slug, i, stop_at, tuple(args.think), rec))
               for i in range(args.participants)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
        time.sleep(min(0.05, 2.0 / max(args.participants, 1)))  # arrivals spread over ~2 s
    fault_log = run_fault(args, server, redis, started)
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    votes = len(rec.vote_ms)
    print(f"load: {args.participants} participants, think {args.think[0]}-{args.think[1]} s, {elapsed:.0f} s, "
          f"gunicorn gthread {args.workers}x{args.threads}")
    print(f"votes acknowledged: {votes} ({votes / elapsed:.1f} votes/s)")
    print(f"vote      p50 {pct(rec.vote_ms, .5):7.1f} ms   p99 {pct(rec.vote_ms, .99):7.1f} ms")
    print(f"/healthz/ p50 {pct(rec.const_ms, .5):7.1f} ms   p99 {pct(rec.const_ms, .99):7.1f} ms")
    print(f"errors seen by participants: {len(rec.errors)}"
          + (f" (first: {rec.errors[0][1]})" if rec.errors else ""))
    if fault_log:
        fault_time = fault_log["at"]
        after = [t for t, _ in rec.errors if t >= fault_time]
        last_error = max(after) if after else None
        recovered = next((t for t in sorted(rec.successes) if last_error and t > last_error), None)
        print(f"fault {args.fault} at {fault_time - started:.1f} s: {fault_log['what']}; errors after it: {len(after)}; "
              + (f"recovered {recovered - fault_time:.1f} s after the fault" if recovered else
                 "no participant-visible errors" if not after else "not recovered within the run"))
    # Saturation: the same server, no think time, vote throughput against /healthz/ throughput.
    const_rate = saturate(port, "/healthz/", args.saturation_threads, args.saturation_seconds,
                          lambda i: lambda: request(port, "GET", "/healthz/")[0] == 200)
    sat = subprocess.run([sys.executable, "bench/_load_setup.py", slug + "-sat", str(args.images * 4), "0"],
                         cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    vote_rate = saturate(port, "/votes/", args.saturation_threads, args.saturation_seconds,
                         lambda i: _saturating_voter(port, slug + "-sat", 10_000 + i, rec))
    print(f"saturation ({args.saturation_threads} clients, no think time): /healthz/ {const_rate:.0f} req/s, "
          f"votes {vote_rate:.0f} votes/s, ratio {vote_rate / const_rate:.2f}")
    server.stop()
    check = subprocess.run([sys.executable, "bench/_load_setup.py", "--check", slug],
                           cwd=ROOT, env=env, input=json.dumps(sorted(rec.acknowledged)), capture_output=True,
                           text=True)
    print(check.stdout.strip() or check.stderr[-2000:])
    del sat


def _saturating_voter(port: int, slug: str, index: int, rec: Recorder):
    state = {"cookies": None}

    def call() -> bool:
        if state["cookies"] is None:
            status, page, headers = request(port, "GET", f"/s/{slug}/")
            csrf = re.search(r"csrftoken=([^;]+)", headers.get("Set-Cookie", "")).group(1)
            token = CSRF_RE.search(page).group(1)
            _, _, headers = request(port, "POST", f"/s/{slug}/consent/", {"consent": "agree", "csrfmiddlewaretoken": token},
                                    headers={"Cookie": f"csrftoken={csrf}"}, form=True)
            name, value = COOKIE_RE.search(headers.get("Set-Cookie", "")).groups()
            state["cookies"] = f"csrftoken={csrf}; {name}={value}"
            state["csrf"] = csrf
            request(port, "POST", f"/s/{slug}/start/", {"csrfmiddlewaretoken": token},
                    headers={"Cookie": state["cookies"]}, form=True)
        status, body, _ = request(port, "GET", f"/api/s/{slug}/trial/", headers={"Cookie": state["cookies"]})
        current = json.loads(body).get("current") if status == 200 else None
        if not current:
            state["cookies"] = None  # finished: become a new participant
            return False
        status, _, _ = request(port, "POST", f"/api/s/{slug}/votes/",
                               {"stimulus": current["stimulus"], "label": "Fear", "response_ms": 500},
                               headers={"Cookie": state["cookies"], "X-CSRFToken": state["csrf"]})
        return status == 201

    return call


def run_fault(args, server: Server, redis: subprocess.Popen, started: float) -> dict | None:
    if args.fault == "none":
        return None
    time.sleep(max(0.0, started + args.fault_at - time.monotonic()))
    at = time.monotonic()
    if args.fault == "kill-worker":
        victim = server.worker_pids()[0]
        os.kill(victim, signal.SIGKILL)
        what = f"kill -9 gunicorn worker {victim} (the master starts a new one)"
    elif args.fault == "restart-web":
        server.kill_all()
        server.start()
        what = f"kill -9 of the whole gunicorn, new server up after {time.monotonic() - at:.1f} s"
    elif args.fault == "stop-redis":
        redis.send_signal(signal.SIGTERM)
        redis.wait()
        what = "redis-server stopped (not restarted within the run)"
    else:
        os.kill(redis.pid, signal.SIGSTOP)
        time.sleep(args.fault_for)
        os.kill(redis.pid, signal.SIGCONT)
        what = f"redis-server frozen (SIGSTOP) for {args.fault_for:.0f} s"
    return {"at": at, "what": what}


if __name__ == "__main__":
    main()
