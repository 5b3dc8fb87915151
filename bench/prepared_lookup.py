"""What planning costs the database on the vote path: the vote's lookup (study.services.votes.VOTE_LOOKUP_SQL) run
--n times planned each time, then --n times prepared, against a PostgreSQL on this machine; the backend's CPU
read from /proc (so run it as a user that may read the server's /proc entries: root or postgres).

    DATABASE_URL=postgres://postgres@127.0.0.1:55510/vote13 .venv/bin/python bench/prepared_lookup.py --n 400

Needs a database where bench/load.py or bench/profile_vote.py left an unanswered assignment.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
import django

django.setup()

import psycopg  # noqa: E402

from study.services.votes import VOTE_LOOKUP_SQL  # noqa: E402

PENDING = """SELECT s.slug, st.public_id, p.token FROM study_assignment a
  JOIN study_participant p ON p.id = a.participant_id JOIN study_study s ON s.id = p.study_id
  JOIN study_stimulus st ON st.id = a.stimulus_id WHERE a.answered_at IS NULL LIMIT 1"""


def backend_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=400)
    args = parser.parse_args()
    conn = psycopg.connect(os.environ["DATABASE_URL"], autocommit=True)
    params = conn.execute(PENDING).fetchone()
    pid = conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    sql = VOTE_LOOKUP_SQL.format(tokens="%s")
    for prepare in (False, True, False, True):
        cursor, cpu, wall = conn.cursor(), backend_cpu(pid), time.perf_counter()
        for _ in range(args.n):
            cursor.execute(sql, params, prepare=prepare)
            cursor.fetchall()
        print(f"{'prepared' if prepare else 'planned each time'}: database CPU "
              f"{(backend_cpu(pid) - cpu) * 1000 / args.n:.2f} ms per lookup, wall "
              f"{(time.perf_counter() - wall) * 1000 / args.n:.2f} ms")


if __name__ == "__main__":
    main()
