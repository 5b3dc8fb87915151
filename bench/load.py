"""Load and fault harness: N simulated participants against a real gunicorn + PostgreSQL (+ Redis) on loopback.

    .venv/bin/python bench/load.py --participants 100 --duration 60 \
        --database-url postgres://postgres@127.0.0.1:55500/load13 [--fault kill-worker --fault-at 20]

Use a PostgreSQL of your own (a private cluster for restart-postgres); the harness starts its own redis-server.
Each participant consents, presses Start, then votes through the JSON API with a think time of 1.5-3 s per
trial, fetching /healthz/ (a constant view) beside each vote so both are timed under the same load. The run
is bounded by --duration; the participants are threads spread over --client-processes processes (one Python
process of 200 threads would itself be the bottleneck). Then the database is checked: every acknowledged vote
stored (0 lost), no (participant, image) twice (0 duplicated), images balanced (votes + held places differ by
at most one). Then a saturation phase (no think time, --saturation-threads clients) measures the throughput of
vote cycles (a vote, and every 20 votes a new participant) against that of /healthz/, and the server's CPU per call
of each (read from /proc: a ratio that the other work on a shared machine hardly moves); then the vote path alone
(participants joined before the timed windows, the joins reported apart as the join cost), in --saturation-rounds
windows each between two windows of /healthz/: the median of their ratios is the figure issue 13's goal reads.
--server-cpus 0 gives gunicorn a core of its own (the clients, redis and, with --pg-data-dir, PostgreSQL run on the
others): on a machine of few cores the clients otherwise take CPU from the server they measure, as they would not
in a deployment where participants and the database are elsewhere.
Faults: kill-worker (kill -9 one gunicorn worker), restart-web (kill -9 the whole server, start a new one),
stop-redis (stopped for --fault-for seconds, then started again) / freeze-redis (SIGSTOP for --fault-for seconds):
a private redis-server is the broker, restart-postgres (runs --pg-restart-command), freeze-postgres (SIGSTOP of every
process of the cluster in --pg-data-dir for --fault-for seconds: nothing refuses, nothing answers). A vote unanswered
after BROWSER_GIVE_UP_SECONDS is given up and sent again, as trial.js does. A participant who meets an
error retries the same vote after 0.5 s (votes are idempotent); the report gives the longest time from a vote's first
try to its acknowledgement, and for how many votes a browser participant (trial.js sends a vote again for
BROWSER_RETRY_SECONDS) would have seen an error page.
"""
from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COOKIE_RE = re.compile(r"(emostudy_participant_\d+)=([^;]+)")
CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
# static/study/participant/trial.js sends a vote that got no answer or a 502/503/504 again after 0.5, 1, 2, 4 and
# 8 s and only then falls back to the form (whose page shows the error): a vote acknowledged within this long after
# its first try costs a browser participant a wait, not an error page.
BROWSER_RETRY_SECONDS = 15.5
BROWSER_GIVE_UP_SECONDS = 15  # trial.js gives up a vote unanswered this long and sends it again


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    """gunicorn (webapp/gunicorn_conf.py) as a child process, restartable."""

    def __init__(self, env: dict, port: int, cpus: set[int] | None = None):
        self.env, self.port, self.cpus, self.process = env, port, cpus, None

    def start(self) -> None:
        pin = (lambda: os.sched_setaffinity(0, self.cpus)) if self.cpus else None  # the workers inherit it
        self.process = subprocess.Popen(
            [str(Path(sys.executable).with_name("gunicorn")), "-c", "webapp/gunicorn_conf.py", "webapp.wsgi"],
            cwd=ROOT, env={**self.env, "WEB_BIND": f"127.0.0.1:{self.port}", "WEB_ACCESS_LOG": ""},
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, preexec_fn=pin)
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


class RedisServer:
    """A private redis-server (the broker), which the faults stop, restart or freeze."""

    def __init__(self, port: int, workdir: Path):
        self.port, self.workdir = port, workdir
        self.start()

    def start(self) -> None:
        self.process = subprocess.Popen(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                                         "--appendonly", "no", "--dir", str(self.workdir)],
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
        self.process.wait()


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
    """What the simulated participants of one client process saw; merged across processes at the end."""

    def __init__(self):
        self.lock = threading.Lock()
        self.vote_ms: list[float] = []
        self.const_ms: list[float] = []
        self.acknowledged: set[tuple[str, str]] = set()
        self.errors: list[tuple[float, str, int]] = []  # (when, what, which participant)
        self.successes: list[float] = []  # time.monotonic() is system-wide: comparable across processes
        self.retried_s: list[float] = []  # votes that needed more than one try: first try -> acknowledged
        self.hung_s: list[float] = []  # the same votes: time spent in tries given up unanswered (BROWSER_GIVE_UP_SECONDS)

    def error(self, what: str, who: int) -> None:
        with self.lock:
            self.errors.append((time.monotonic(), what, who))

    def state(self) -> dict:
        return {"vote_ms": self.vote_ms, "const_ms": self.const_ms, "acknowledged": self.acknowledged,
                "errors": self.errors, "successes": self.successes, "retried_s": self.retried_s, "hung_s": self.hung_s}

    def merge(self, state: dict) -> None:
        self.vote_ms += state["vote_ms"]
        self.const_ms += state["const_ms"]
        self.acknowledged |= state["acknowledged"]
        self.errors += state["errors"]
        self.successes += state["successes"]
        self.retried_s += state["retried_s"]
        self.hung_s += state["hung_s"]


def in_processes(n_processes: int, work) -> list:
    """Run work(k) for k in 0..n_processes-1, each in a forked client process, and return what each returned:
    the client's threads then share n_processes GILs, not one (a single process saturates before the server)."""
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    processes = [context.Process(target=lambda k=k: queue.put((k, work(k)))) for k in range(n_processes)]
    for process in processes:
        process.start()
    results = dict(queue.get() for _ in processes)
    for process in processes:
        process.join()
    return [results[k] for k in range(n_processes)]


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and of its children that it has waited for (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(value) for value in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _own_cpu_seconds(pids) -> float:
    """User + system CPU of each live process in `pids` (its reaped children are counted by their parent)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += sum(int(value) for value in fields[11:13]) / os.sysconf("SC_CLK_TCK")
        except FileNotFoundError:
            pass
    return total


def server_cpu_seconds(server: Server) -> float:
    """CPU used so far by the gunicorn master and its workers (live ones, and exited ones the master reaped)."""
    return process_cpu_seconds(server.process.pid) + _own_cpu_seconds(server.worker_pids())


def postgres_pids(data_dir: str) -> list[int]:
    """The postmaster of a cluster on this machine and its live children (backends and auxiliary processes)."""
    postmaster = int(Path(data_dir, "postmaster.pid").read_text().split()[0])
    children = subprocess.run(["pgrep", "-P", str(postmaster)], capture_output=True, text=True).stdout.split()
    return [postmaster, *map(int, children)]


def pin_cpus(pids: list[int], cpus: set[int]) -> None:
    """Restrict processes to `cpus` (children forked later, e.g. new database backends, inherit it)."""
    for pid in pids:
        try:
            os.sched_setaffinity(pid, cpus)
        except ProcessLookupError:
            pass


def database_cpu_seconds(data_dir: str) -> float:
    """CPU used so far by a PostgreSQL cluster (the postmaster, its live backends and those that exited), or 0 when
    no data directory was given (--pg-data-dir): the database's share of a call, on a machine it shares."""
    if not data_dir:
        return 0.0
    postmaster, *backends = postgres_pids(data_dir)
    return process_cpu_seconds(postmaster) + _own_cpu_seconds(backends)


def join(port: int, slug: str, query: str = "") -> tuple[str, str]:
    """Entry, consent and Start as a new participant -> (the Cookie header to send, the CSRF token)."""
    _, page, headers = request(port, "GET", f"/s/{slug}/{query}")
    csrf = re.search(r"csrftoken=([^;]+)", headers.get("Set-Cookie", "")).group(1)
    token = CSRF_RE.search(page).group(1)
    _, _, headers = request(port, "POST", f"/s/{slug}/consent/", {"consent": "agree", "csrfmiddlewaretoken": token},
                            headers={"Cookie": f"csrftoken={csrf}"}, form=True)
    name, value = COOKIE_RE.search(headers.get("Set-Cookie", "")).groups()
    cookies = f"csrftoken={csrf}; {name}={value}"
    request(port, "POST", f"/s/{slug}/start/", {"csrfmiddlewaretoken": token}, headers={"Cookie": cookies}, form=True)
    return cookies, csrf


def participant(port: int, slug: str, index: int, stop_at: float, think: tuple[float, float], rec: Recorder,
                think_enabled: bool = True) -> None:
    rng = random.Random(index)
    try:
        cookies, csrf_cookie = join(port, slug, f"?PROLIFIC_PID=bench-{index}")
        vote_headers = {"Cookie": cookies, "X-CSRFToken": csrf_cookie}
    except Exception as exc:  # could not even join (e.g. the server was down): counted as an error
        rec.error(f"join: {exc.__class__.__name__}", index)
        return
    state = None  # the trial state: from GET .../trial/ at first, then from each vote's answer
    while time.monotonic() < stop_at:
        try:
            if state is None:
                status, body, _ = request(port, "GET", f"/api/s/{slug}/trial/", headers={"Cookie": cookies})
                if status != 200:
                    raise RuntimeError(f"trial {status}")
                state = json.loads(body)
            if state["done"] or not state["current"]:
                return
            stimulus = state["current"]["stimulus"]
        except Exception as exc:
            rec.error(f"trial: {exc}", index)
            time.sleep(0.5)
            continue
        state = None
        if think_enabled:
            time.sleep(rng.uniform(*think))
        first_try, tries, hung = time.monotonic(), 0, 0.0
        while time.monotonic() < stop_at + 30:  # retry the same vote until it is acknowledged
            tries += 1
            started = time.monotonic()
            try:
                status, body, _ = request(port, "POST", f"/api/s/{slug}/votes/",
                                          {"stimulus": stimulus, "label": "Fear", "response_ms": 900},
                                          headers=vote_headers, timeout=BROWSER_GIVE_UP_SECONDS)
            except Exception as exc:
                status, body = 0, exc.__class__.__name__
                hung += (time.monotonic() - started) if isinstance(exc, TimeoutError) else 0.0
            elapsed = (time.monotonic() - started) * 1000
            if status == 201:
                answer = json.loads(body)
                state = answer.get("trial")  # where the participant stands now, with the next image
                with rec.lock:
                    rec.vote_ms.append(elapsed)
                    rec.acknowledged.add((answer["participant"], stimulus))
                    rec.successes.append(time.monotonic())
                    if tries > 1:
                        rec.retried_s.append(time.monotonic() - first_try)
                        rec.hung_s.append(hung)
                break
            rec.error(f"vote {status} {body[:60]}", index)
            time.sleep(0.5)
        if think_enabled:
            started = time.monotonic()
            try:
                if request(port, "GET", "/healthz/")[0] == 200:
                    with rec.lock:
                        rec.const_ms.append((time.monotonic() - started) * 1000)
            except Exception as exc:
                rec.error(f"healthz: {exc.__class__.__name__}", index)


def saturate(threads: int, seconds: float, make_call, processes: int) -> dict:
    """`threads` clients calling as fast as they can for `seconds`, spread over `processes` client processes.
    Returns successful calls per second, the votes acknowledged, and the CPU seconds the clients used."""
    stop_at = time.monotonic() + seconds

    def one_process(k: int) -> dict:
        count, lock, acknowledged = [0], threading.Lock(), set()

        def loop(i):
            call = make_call(i, acknowledged)
            while time.monotonic() < stop_at:
                try:
                    ok = call()
                except Exception:  # a refused or reset connection counts as a failed call
                    ok = False
                if ok:
                    with lock:
                        count[0] += 1

        mine = [threading.Thread(target=loop, args=(i,)) for i in range(k, threads, processes)]
        for thread in mine:
            thread.start()
        for thread in mine:
            thread.join()
        return {"count": count[0], "acknowledged": acknowledged}

    client_cpu = _children_cpu()
    results = in_processes(processes, one_process)
    return {"rate": sum(r["count"] for r in results) / seconds, "count": sum(r["count"] for r in results),
            "acknowledged": set().union(*(r["acknowledged"] for r in results)),
            "client_cpu": _children_cpu() - client_cpu}


def saturate_measured(args, server: Server, seconds: float, make_call) -> dict:
    """saturate() with --saturation-threads clients, plus the CPU seconds the server ("server_cpu") and, with
    --pg-data-dir, PostgreSQL ("db_cpu") spent meanwhile."""
    server_cpu, db_cpu = server_cpu_seconds(server), database_cpu_seconds(args.pg_data_dir)
    phase = saturate(args.saturation_threads, seconds, make_call, args.client_processes)
    phase["server_cpu"] = server_cpu_seconds(server) - server_cpu
    phase["db_cpu"] = database_cpu_seconds(args.pg_data_dir) - db_cpu
    return phase


def _children_cpu() -> float:
    times = os.times()
    return times.children_user + times.children_system


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
    parser.add_argument("--arrival-seconds", type=float, default=2.0,
                        help="participants arrive evenly over this many seconds (default 2: nearly all at once)")
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
    parser.add_argument("--workers", type=int, default=3)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--fault", choices=["none", "kill-worker", "restart-web", "stop-redis", "freeze-redis",
                                            "restart-postgres", "freeze-postgres"], default="none")
    parser.add_argument("--fault-at", type=float, default=20)
    parser.add_argument("--fault-for", type=float, default=10, help="seconds Redis or PostgreSQL stays stopped/frozen")
    parser.add_argument("--pg-restart-command", default="",
                        help="shell command that restarts the PostgreSQL of --database-url (restart-postgres only); "
                             "use a private cluster, never one that other people share")
    parser.add_argument("--saturation-threads", type=int, default=16)
    parser.add_argument("--saturation-seconds", type=float, default=8, help="0 skips the saturation phase")
    parser.add_argument("--pg-data-dir", default="",
                        help="data directory of the PostgreSQL cluster of --database-url (a private one on this machine): "
                             "the saturation phases then also report the database's CPU per call")
    parser.add_argument("--saturation-joined", type=int, default=25,
                        help="participants per saturating client joined before the vote-only window (20 votes each); "
                             "0 skips that variant")
    parser.add_argument("--saturation-rounds", type=int, default=3,
                        help="the vote-only window is cut into this many, each between two windows of /healthz/")
    parser.add_argument("--client-processes", type=int, default=4,
                        help="simulated participants and saturating clients are spread over this many processes")
    parser.add_argument("--max-requests", type=int, default=0,
                        help="gunicorn recycles a worker after this many requests (production: 5000); 0, the default "
                             "here, never: a 10 s saturation phase of the constant view (~10,000 requests) recycles "
                             "every worker, which cost that phase a third of its rate (bench/RESULTS.md)")
    parser.add_argument("--server-cpus", default="",
                        help="CPUs for gunicorn alone, e.g. 0: this harness, its clients, redis and (with --pg-data-dir) "
                             "the database are pinned to the others. The web host's own cores, as in a deployment "
                             "where participants and the database are not on the web server's machine")
    args = parser.parse_args()
    if not args.database_url.startswith("postgres"):
        sys.exit("--database-url postgres://... is required (the real stack)")
    if args.fault == "restart-postgres" and not args.pg_restart_command:
        sys.exit("--fault restart-postgres needs --pg-restart-command (for a private cluster)")
    if args.fault == "freeze-postgres" and not args.pg_data_dir:
        sys.exit("--fault freeze-postgres needs --pg-data-dir (the private cluster whose processes it freezes)")

    everything = os.sched_getaffinity(0)
    args.server_cpus = {int(cpu) for cpu in args.server_cpus.split(",") if cpu.strip()} or None
    if args.server_cpus:
        others = everything - args.server_cpus
        if not args.server_cpus <= everything or not others:
            sys.exit(f"--server-cpus must name some, not all, of this machine's CPUs {sorted(everything)}")
        os.sched_setaffinity(0, others)  # before any thread or child: the clients and redis inherit it
        if args.pg_data_dir:
            pin_cpus(postgres_pids(args.pg_data_dir), others)
        print(f"CPUs: gunicorn on {sorted(args.server_cpus)}; clients, redis"
              + (", PostgreSQL" if args.pg_data_dir else "") + f" on {sorted(others)}")
    workdir = Path(tempfile.mkdtemp(prefix="emostudy-load-"))
    redis_port = free_port()
    redis = RedisServer(redis_port, workdir)
    env = {**os.environ, "DATABASE_URL": args.database_url, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
           "DEBUG": "false", "SECRET_KEY": "bench-" + "x" * 50, "ALLOWED_HOSTS": "127.0.0.1",
           "MEDIA_ROOT": str(workdir / "media"), "PARTICIPANT_STARTS_PER_CLIENT": "0", "AXES_ENABLED": "false",
           "WEB_WORKERS": str(args.workers), "WEB_THREADS": str(args.threads), "LOG_LEVEL": "WARNING",
           "WEB_MAX_REQUESTS": str(args.max_requests)}
    try:
        run(args, env, redis, workdir)
    finally:
        redis.kill()
        shutil.rmtree(workdir, ignore_errors=True)  # the run's media and redis folder
        if args.server_cpus and args.pg_data_dir:
            pin_cpus(postgres_pids(args.pg_data_dir), everything)  # the cluster as it was


def run(args, env: dict, redis: RedisServer, workdir: Path) -> None:
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)
    slug = f"load-{int(time.time())}"
    setup = subprocess.run([sys.executable, "bench/_load_setup.py", slug, str(args.images),
                            str(args.participants)], cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    print(setup.stdout.strip())
    port = free_port()
    server = Server(env, port, args.server_cpus)
    server.start()
    try:
        measure(args, env, redis, server, port, slug)
    finally:
        if server.process.poll() is None:
            server.stop()


def measure(args, env: dict, redis: RedisServer, server: Server, port: int, slug: str) -> None:
    rec = Recorder()
    stop_at = time.monotonic() + args.duration
    started = time.monotonic()
    processes = max(1, min(args.client_processes, args.participants))

    def participants_of_process(k: int) -> dict:
        mine = Recorder()
        threads = []
        for i in range(k, args.participants, processes):
            arrival = started + args.arrival_seconds * i / max(args.participants, 1)  # evenly over --arrival-seconds
            time.sleep(max(0.0, arrival - time.monotonic()))
            thread = threading.Thread(target=participant, args=(port, slug, i, stop_at, tuple(args.think), mine))
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join()
        return mine.state()

    fault_logs: list = []  # the fault is made by a thread of this process while the clients run
    faulting = threading.Thread(target=lambda: fault_logs.append(run_fault(args, server, redis, started)))
    faulting.start()
    probes: list = []  # what an orchestrator sees meanwhile: /readyz/ (DB and broker) every 0.5 s
    probing = threading.Thread(target=probe_readiness, args=(port, stop_at, probes))
    probing.start()
    for state in in_processes(processes, participants_of_process):
        rec.merge(state)
    faulting.join()
    probing.join()
    fault_log = fault_logs[0]
    elapsed = time.monotonic() - started
    votes = len(rec.vote_ms)
    print(f"load: {args.participants} participants in {processes} client processes, think {args.think[0]}-"
          f"{args.think[1]} s, {elapsed:.0f} s, gunicorn gthread {args.workers}x{args.threads}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"votes acknowledged: {votes} ({votes / elapsed:.1f} votes/s)")
    print(f"vote      p50 {pct(rec.vote_ms, .5):7.1f} ms   p99 {pct(rec.vote_ms, .99):7.1f} ms")
    print(f"/healthz/ p50 {pct(rec.const_ms, .5):7.1f} ms   p99 {pct(rec.const_ms, .99):7.1f} ms")
    # Once everyone has arrived: the joins (≈ 50 ms of server CPU each) no longer queue ahead of the votes.
    arrived = started + args.arrival_seconds
    steady = [ms for ms, at in zip(rec.vote_ms, rec.successes, strict=True) if at - ms / 1000 >= arrived]
    print(f"vote after all {args.participants} arrived ({args.arrival_seconds:g} s): {len(steady)} votes, "
          f"p50 {pct(steady, .5):7.1f} ms   p99 {pct(steady, .99):7.1f} ms")
    kinds = Counter(what for _, what, _ in rec.errors)
    print(f"errors seen by participants: {len(rec.errors)} failed requests (retries included) for "
          f"{len({who for _, _, who in rec.errors})} of {args.participants} participants"
          + (" (" + "; ".join(f"{n}x {what}" for what, n in kinds.most_common(5)) + ")" if rec.errors else ""))
    if rec.retried_s:
        # A browser's 15.5 s of waits between tries do not count the tries it gave up after BROWSER_GIVE_UP_SECONDS.
        beyond = sum(wait - hung > BROWSER_RETRY_SECONDS for wait, hung in zip(rec.retried_s, rec.hung_s, strict=True))
        print(f"votes sent more than once: {len(rec.retried_s)}, acknowledged at most {max(rec.retried_s):.1f} s "
              f"after the first try ({sum(h > 0 for h in rec.hung_s)} of them given up unanswered after "
              f"{BROWSER_GIVE_UP_SECONDS} s at least once); a browser participant (trial.js waits "
              f"{BROWSER_RETRY_SECONDS:g} s in all between tries before it shows the server's page) would have seen an "
              f"error page for {beyond}")
    if fault_log:
        fault_time = fault_log["at"]
        after = [t for t, _, _ in rec.errors if t >= fault_time]
        last_error = max(after) if after else None
        recovered = next((t for t in sorted(rec.successes) if last_error and t > last_error), None)
        print(f"fault {args.fault} at {fault_time - started:.1f} s: {fault_log['what']}; errors after it: {len(after)}; "
              + (f"recovered {recovered - fault_time:.1f} s after the fault" if recovered else
                 "no participant-visible errors" if not after else "not recovered within the run"))
    failed = [(t, status, ms) for t, status, ms in probes if status != 200]
    print(f"/readyz/ probes: {len(probes)}, not 200: {len(failed)}"
          + (f" ({', '.join(sorted({str(status) for _, status, _ in failed}))}), from {failed[0][0] - started:.1f} s "
             f"to {failed[-1][0] - started:.1f} s" if failed else "")
          + f"; slowest answer {max((ms for _, _, ms in probes), default=0):.0f} ms")
    print(check_database(env, slug, rec.acknowledged))
    if args.saturation_seconds > 0:
        saturation(args, env, server, port, slug)
    server.stop()


def probe_readiness(port: int, stop_at: float, probes: list) -> None:
    while time.monotonic() < stop_at:
        started = time.monotonic()
        try:
            status = request(port, "GET", "/readyz/", timeout=10)[0]
        except Exception as exc:
            status = exc.__class__.__name__
        probes.append((started, status, (time.monotonic() - started) * 1000))
        time.sleep(max(0.0, started + 0.5 - time.monotonic()))


def saturation(args, env: dict, server: Server, port: int, slug: str) -> None:
    """The same server, no think time: vote cycles per second against /healthz/ requests per second, and the
    server's CPU per vote cycle against its CPU per /healthz/ request (a ratio the machine's load hardly moves)."""
    subprocess.run([sys.executable, "bench/_load_setup.py", slug + "-sat", str(args.images * 4), "0"],
                   cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    phases = {}
    for name, make_call in (
            ("/healthz/", _constant_caller(port)),
            ("vote cycle", lambda i, acknowledged: _saturating_voter(port, slug + "-sat", 10_000 + i, acknowledged))):
        load = os.getloadavg()[0]
        phase = saturate_measured(args, server, args.saturation_seconds, make_call)
        phase["server_cpu_ms"] = phase["server_cpu"] * 1000 / max(phase["count"], 1)
        phase["db_cpu_ms"] = phase["db_cpu"] * 1000 / max(phase["count"], 1)
        phase["client_cpu_ms"] = phase["client_cpu"] * 1000 / max(phase["count"], 1)
        phase["load"] = load
        phases[name] = phase
        print(f"saturation {name:10}: {phase['rate']:6.1f}/s with {args.saturation_threads} clients in "
              f"{args.client_processes} processes; server CPU {phase['server_cpu_ms']:.2f} ms, "
              + (f"database CPU {phase['db_cpu_ms']:.2f} ms, " if args.pg_data_dir else "")
              + f"client CPU {phase['client_cpu_ms']:.2f} ms per call; load average {load:.1f}")
    const, votes = phases["/healthz/"], phases["vote cycle"]
    print(f"ratio vote cycles / /healthz/ requests: throughput {votes['rate'] / const['rate']:.3f}, "
          f"server CPU per call {votes['server_cpu_ms'] / max(const['server_cpu_ms'], 1e-9):.1f}x")
    print(check_database(env, slug + "-sat", votes["acknowledged"]))
    if args.saturation_joined > 0:
        votes_only(args, env, server, port, slug + "-votes")


def votes_only(args, env: dict, server: Server, port: int, slug: str) -> None:
    """The vote path alone (what issue 13's goal reads on): --saturation-joined participants per client join first
    (entry, consent, Start and the trial state; timed and reported as the join cost), then the same clients send
    only votes, each answer naming the next image, for --saturation-seconds in all. The votes' time is cut into
    --saturation-rounds windows, each between two windows of the constant view (H V H V ... H), and each window's
    ratio is taken against the mean of the constant view's rates just before and just after it: on a shared machine
    the constant view's rate drifted by up to half between phases 20 s apart (290 and 631/s in one run), and the
    median of interleaved pairs is the reading such drift moves least."""
    threads, rounds = args.saturation_threads, max(1, args.saturation_rounds)
    window = args.saturation_seconds / rounds
    subprocess.run([sys.executable, "bench/_load_setup.py", slug, str(args.images), str(threads * args.saturation_joined)],
                   cwd=ROOT, env=env, check=True, capture_output=True, text=True)
    server_cpu, load, started = server_cpu_seconds(server), os.getloadavg()[0], time.monotonic()
    joined = join_many(port, slug, threads * args.saturation_joined, threads, args.client_processes)
    elapsed = time.monotonic() - started
    join_cpu_ms = (server_cpu_seconds(server) - server_cpu) * 1000 / max(len(joined), 1)
    print(f"joins before the vote-only windows: {len(joined)} participants (entry, consent, Start, trial state) in "
          f"{elapsed:.1f} s ({len(joined) / elapsed:.1f}/s with {threads} clients), server CPU {join_cpu_ms:.1f} ms "
          f"per join; load average {load:.1f}")
    exhausted = multiprocessing.get_context("fork").Value("i", 0)
    load = os.getloadavg()[0]
    constant, votes = [saturate_measured(args, server, window, _constant_caller(port))], []
    for k in range(rounds):  # each round votes for its own share of the joined participants
        share = joined[k::rounds]
        votes.append(saturate_measured(args, server, window, lambda i, acknowledged, share=share: _joined_voter(
            port, slug, share[i::threads], acknowledged, exhausted)))
        constant.append(saturate_measured(args, server, window, _constant_caller(port)))
    ratios = [vote["rate"] / ((before["rate"] + after["rate"]) / 2)
              for vote, before, after in zip(votes, constant[:-1], constant[1:], strict=True)]
    count = sum(vote["count"] for vote in votes)
    const_count = sum(phase["count"] for phase in constant)
    server_ms = sum(vote["server_cpu"] for vote in votes) * 1000 / max(count, 1)
    const_server_ms = sum(phase["server_cpu"] for phase in constant) * 1000 / max(const_count, 1)
    db_ms = sum(vote["db_cpu"] for vote in votes) * 1000 / max(count, 1)
    client_ms = sum(vote["client_cpu"] for vote in votes) * 1000 / max(count, 1)
    print(f"saturation vote only : {count / (window * rounds):6.1f}/s with {threads} clients in "
          f"{args.client_processes} processes, {rounds} windows of {window:.1f} s; server CPU {server_ms:.2f} ms, "
          + (f"database CPU {db_ms:.2f} ms, " if args.pg_data_dir else "")
          + f"client CPU {client_ms:.2f} ms per vote; load average {load:.1f}"
          + (f"; WARNING: {exhausted.value} clients ran out of participants, raise --saturation-joined"
             if exhausted.value else ""))
    const_rates = " · ".join(f"{phase['rate']:.1f}" for phase in constant)
    print(f"saturation /healthz/ around them: {const_rates}/s; server CPU {const_server_ms:.2f} ms per call")
    print(f"ratio votes / /healthz/ requests (vote path alone; each window against the /healthz/ windows around "
          f"it): {', '.join(f'{ratio:.3f}' for ratio in ratios)}; median {statistics.median(ratios):.3f}; "
          f"server CPU per call {server_ms / max(const_server_ms, 1e-9):.1f}x")
    print(check_database(env, slug, set().union(*(vote["acknowledged"] for vote in votes))))


def join_many(port: int, slug: str, count: int, threads: int, processes: int) -> list[dict]:
    """`count` new participants, joined by `threads` clients over `processes` processes: each one's cookies, CSRF
    token and first image (from the JSON trial state)."""
    def one_process(k: int) -> list[dict]:
        done, lock = [], threading.Lock()

        def loop(i):
            for _ in range(i, count, threads):
                cookies, csrf = join(port, slug)
                status, body, _ = request(port, "GET", f"/api/s/{slug}/trial/", headers={"Cookie": cookies})
                current = json.loads(body).get("current") if status == 200 else None
                if current:
                    with lock:
                        done.append({"cookies": cookies, "csrf": csrf, "current": current})

        mine = [threading.Thread(target=loop, args=(i,)) for i in range(k, threads, processes)]
        for thread in mine:
            thread.start()
        for thread in mine:
            thread.join()
        return done

    return [joined for result in in_processes(processes, one_process) for joined in result]


def _constant_caller(port: int):
    """For saturate(): each client calls the constant view (/healthz/) as fast as it can."""
    return lambda i, acknowledged: lambda: request(port, "GET", "/healthz/")[0] == 200


def _joined_voter(port: int, slug: str, participants: list[dict], acknowledged: set, exhausted):
    """One client without think time that only votes, for participants who joined before the window."""
    queue, state = [dict(p) for p in participants], {"exhausted": False}

    def call() -> bool:
        while queue and not queue[0]["current"]:
            queue.pop(0)  # finished: the next participant
        if not queue:  # out of participants: idle until the window ends (the warning tells)
            if not state["exhausted"]:
                state["exhausted"] = True
                with exhausted.get_lock():
                    exhausted.value += 1
            time.sleep(0.2)
            return False
        who = queue[0]
        status, body, _ = request(port, "POST", f"/api/s/{slug}/votes/",
                                  {"stimulus": who["current"]["stimulus"], "label": "Fear", "response_ms": 500},
                                  headers={"Cookie": who["cookies"], "X-CSRFToken": who["csrf"]})
        if status != 201:
            return False
        answer = json.loads(body)
        acknowledged.add((answer["participant"], who["current"]["stimulus"]))
        who["current"] = (answer.get("trial") or {}).get("current")
        return True

    return call


def check_database(env: dict, slug: str, acknowledged: set) -> str:
    check = subprocess.run([sys.executable, "bench/_load_setup.py", "--check", slug],
                           cwd=ROOT, env=env, input=json.dumps(sorted(acknowledged)), capture_output=True,
                           text=True)
    return check.stdout.strip() or check.stderr[-2000:]


def _saturating_voter(port: int, slug: str, index: int, acknowledged: set):
    """One client without think time: the trial state once, then votes (each answer names the next image), and
    every 20 votes a new participant (entry, consent, Start): what a vote cycle of the JSON API costs, joins
    included."""
    state = {"cookies": None, "current": None}

    def call() -> bool:
        if state["cookies"] is None:
            state["cookies"], state["csrf"] = join(port, slug)
        current, state["current"] = state["current"], None
        if current is None:  # just joined, or the last answer named no next image (or came from an older server)
            status, body, _ = request(port, "GET", f"/api/s/{slug}/trial/", headers={"Cookie": state["cookies"]})
            current = json.loads(body).get("current") if status == 200 else None
        if not current:
            state["cookies"] = None  # finished: become a new participant
            return False
        status, body, _ = request(port, "POST", f"/api/s/{slug}/votes/",
                                  {"stimulus": current["stimulus"], "label": "Fear", "response_ms": 500},
                                  headers={"Cookie": state["cookies"], "X-CSRFToken": state["csrf"]})
        if status != 201:
            state["cookies"] = None
            return False
        answer = json.loads(body)
        acknowledged.add((answer["participant"], current["stimulus"]))
        state["current"] = (answer.get("trial") or {}).get("current")
        return True

    return call


def run_fault(args, server: Server, redis: RedisServer, started: float) -> dict | None:
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
        redis.process.send_signal(signal.SIGTERM)
        redis.process.wait()
        time.sleep(args.fault_for)
        redis.start()
        what = f"redis-server stopped for {args.fault_for:.0f} s, then started again"
    elif args.fault == "freeze-redis":
        os.kill(redis.process.pid, signal.SIGSTOP)
        time.sleep(args.fault_for)
        os.kill(redis.process.pid, signal.SIGCONT)
        what = f"redis-server frozen (SIGSTOP) for {args.fault_for:.0f} s"
    elif args.fault == "freeze-postgres":
        frozen = postgres_pids(args.pg_data_dir)
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        time.sleep(args.fault_for)
        for pid in frozen:
            os.kill(pid, signal.SIGCONT)
        what = f"PostgreSQL frozen (SIGSTOP of its {len(frozen)} processes) for {args.fault_for:.0f} s"
    else:
        subprocess.run(args.pg_restart_command, shell=True, check=True, stdout=subprocess.DEVNULL)
        what = f"PostgreSQL restarted ({args.pg_restart_command!r}, {time.monotonic() - at:.1f} s)"
    return {"at": at, "what": what}


if __name__ == "__main__":
    main()
