"""votes.csv export throughput and memory at 1M votes, against PostgreSQL's own COPY of the same rows.

    DATABASE_URL=postgres://... python bench/export.py [--votes 1000000]

Builds a study of 1,000 images x N/1,000 participants (COPY FROM, fast), then in the same run:
- baseline: `COPY (SELECT <the same columns, same joins>) TO STDOUT WITH CSV` through psycopg, bytes discarded;
- export: study.exports.stream(study, "votes.csv"), exactly what the download button streams, bytes discarded
  (on PostgreSQL that is itself a COPY of the same columns formatted in SQL; see study/exports.py).
Prints throughput of both, the ratio (goal >= 0.3x) and the export's peak Python memory (tracemalloc; goal
< 200 MB) and the process's peak RSS. PostgreSQL only. Not a pass/fail test.
"""
import argparse
import json
import os
import resource
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--votes", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="print the export's top functions (cProfile)")
    parser.add_argument("--keep", action="store_true", help="keep the generated study (for EXPLAIN and the like)")
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        sys.exit("bench/export.py needs DATABASE_URL=postgres://... (it compares with PostgreSQL's COPY)")
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    from study import exports
    from study.models import LabelSet, Study

    images, people = 1000, max(1, args.votes // 1000)
    slug = f"bench-export-{time.time_ns()}"
    study = Study.objects.create(slug=slug, title="bench", label_set=LabelSet.objects.get(name="RAF-DB basic-7"))
    labels = study.label_set.labels
    started = time.perf_counter()
    with connection.cursor() as cursor:
        raw = cursor.connection
        with raw.cursor().copy("COPY study_stimulus (public_id, study_id, image, sha256, original_name, width, height, "
                               "ground_truth, is_gold, source, created_at) FROM STDIN") as copy:
            for i in range(images):
                copy.write_row([str(uuid.uuid4()), study.pk, f"b/{i}.png", f"{slug}{i:064d}"[-64:],
                                f"face_{i}.png", 112, 112, "", False, "", "2026-01-01T00:00:00Z"])
        with raw.cursor().copy("COPY study_participant (study_id, token, public_id, external_ids, user_agent_family, "
                               "label_order, started_at, gold_answered, gold_correct, excluded, exclusion_reason) "
                               "FROM STDIN") as copy:
            for p in range(people):
                copy.write_row([study.pk, f"{slug}-{p}", str(uuid.uuid4()), json.dumps({"PROLIFIC_PID": f"p{p}"}),
                                "Chrome", "[]", "2026-01-01T00:00:00Z", 0, 0, False, ""])
        cursor.execute("SELECT id FROM study_stimulus WHERE study_id = %s ORDER BY id", [study.pk])
        stimulus_ids = [r[0] for r in cursor.fetchall()]
        cursor.execute("SELECT id FROM study_participant WHERE study_id = %s ORDER BY id", [study.pk])
        participant_ids = [r[0] for r in cursor.fetchall()]
        with raw.cursor().copy("COPY study_vote (participant_id, stimulus_id, label, response_ms, created_at) "
                               "FROM STDIN") as copy:
            for p, pid in enumerate(participant_ids):
                for s, sid in enumerate(stimulus_ids):
                    copy.write_row([pid, sid, labels[(p * 7 + s * 3) % len(labels)], 500 + (p + s) % 1500,
                                    "2026-01-01T00:00:00Z"])
        cursor.execute("ANALYZE study_vote")
    n_votes = images * people
    print(f"built {n_votes:,} votes in {time.perf_counter() - started:.0f}s")

    query = ("COPY (SELECT p.public_id, p.external_ids, s.public_id, s.original_name, v.label, v.response_ms, "
             "s.is_gold, p.excluded, v.created_at FROM study_vote v JOIN study_participant p ON p.id = v.participant_id "
             f"JOIN study_stimulus s ON s.id = v.stimulus_id WHERE s.study_id = {study.pk} "
             "ORDER BY v.id) TO STDOUT WITH CSV")
    started, copied = time.perf_counter(), 0
    with connection.cursor() as cursor:
        with cursor.connection.cursor().copy(query) as copy:
            for block in copy:
                copied += len(block)
    copy_seconds = time.perf_counter() - started

    def export_once() -> int:
        return sum(len(chunk) for chunk in exports.stream(study, "votes.csv"))

    if args.profile:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.runcall(export_once)
        pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
    started = time.perf_counter()
    exported = export_once()  # timed without tracemalloc, which slows every allocation
    export_seconds = time.perf_counter() - started
    tracemalloc.start()
    export_once()  # a second pass only to measure peak memory
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"COPY TO STDOUT : {n_votes / copy_seconds:10,.0f} rows/s ({copied / 1e6:.0f} MB in {copy_seconds:.1f}s)")
    print(f"votes.csv      : {n_votes / export_seconds:10,.0f} rows/s ({exported / 1e6:.0f} MB in {export_seconds:.1f}s)")
    print(f"ratio export/COPY: {copy_seconds / export_seconds:.2f}x  (goal >= 0.3x)")
    print(f"export peak Python memory (tracemalloc): {peak / 2**20:.0f} MB (goal < 200 MB); "
          f"process peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    if args.keep:
        print(f"kept study {study.slug}")
        return
    with connection.cursor() as cursor:  # leave the database as it was
        cursor.execute("DELETE FROM study_vote WHERE stimulus_id IN (SELECT id FROM study_stimulus WHERE study_id=%s)",
                       [study.pk])
    study.delete()


if __name__ == "__main__":
    main()
