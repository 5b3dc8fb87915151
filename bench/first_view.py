"""The first view of a researcher page in a fresh web process (nothing imported lazily yet, empty cache),
then a second view, with the SQL statements each ran and, with --profile, cProfile's top functions.

    DATABASE_URL=sqlite:////tmp/demo.sqlite3 MEDIA_ROOT=/tmp/demo-media .venv/bin/python bench/first_view.py \
        /studies/demo/participants/ [--profile]

Needs a seeded database (manage.py migrate; manage.py seed_demo) and logs in as its `admin`. The URL
configuration is imported before the clock starts, as runserver and gunicorn do at start, so the first
view's time is the page's own lazy imports and work. The second view is the baseline its ratio is given to.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", default="/studies/demo/participants/")
    parser.add_argument("--profile", action="store_true", help="print the top 30 functions of the first view")
    parser.add_argument("--import-at-start", action="store_true",
                        help="import crowd-kit before the clock starts, as gunicorn's master and make run's web "
                             "server do at start (study.analysis.aggregation.import_crowd_kit)")
    args = parser.parse_args()

    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 - import the URL configuration, as the servers do at start
    if args.import_at_start:
        from study.analysis.aggregation import import_crowd_kit

        import_crowd_kit()
    client = Client()
    client.force_login(get_user_model().objects.get(username="admin"))
    profiler = cProfile.Profile()
    times = []
    for view in ("first", "second"):
        with CaptureQueriesContext(connection) as queries:
            start = time.perf_counter()
            if view == "first" and args.profile:
                profiler.enable()
            response = client.get(args.path)
            profiler.disable()
            times.append(time.perf_counter() - start)
        print(f"{args.path} {view} view: {times[-1]:.2f} s (status {response.status_code}, {len(queries)} queries, "
              f"{len(response.content)} bytes)")
    print(f"first / second view: {times[0] / times[1]:.1f}x")
    if args.profile:
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(30)


if __name__ == "__main__":
    main()
