"""Comparison page cost at realistic size: 1,000 images x 40 votes x 2 models.

    python bench/compare.py [--images 1000] [--votes 40] [--models 2]

Prints the page's wall time and query count, and the ratio of the page time to a baseline measured in
the same run: fetching the same rows (vote counts per image and label, and every prediction) with raw
`values_list` queries, i.e. the unavoidable database work. Uses a throwaway SQLite database unless
DATABASE_URL is set. Not a pass/fail test.
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._django import setup_django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--votes", type=int, default=40, help="votes per image (one per participant)")
    parser.add_argument("--models", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    setup_django()

    import numpy as np
    from django.contrib.auth import get_user_model
    from django.core.cache import cache
    from django.db import connection
    from django.db.models import Count
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from study.models import LabelSet, ModelVersion, Participant, Prediction, Stimulus, Study, Vote

    rng = np.random.default_rng(0)
    user = get_user_model().objects.create_user(f"bench{time.time_ns()}", password="x")
    study = Study.objects.create(slug=f"bench-{time.time_ns()}", title="bench", owner=user,
                                 label_set=LabelSet.objects.get(name="RAF-DB basic-7"))
    labels = study.label_set.labels
    started = time.perf_counter()
    stimuli = Stimulus.objects.bulk_create([
        Stimulus(study=study, sha256=f"{i:064x}", original_name=f"face_{i}.png", image=f"bench/{i}.png",
                 width=112, height=112) for i in range(args.images)])
    people = Participant.objects.bulk_create([Participant(study=study, token=f"{study.slug}-{i}")
                                              for i in range(args.votes)])
    truth = rng.dirichlet(np.ones(len(labels)) * 0.5, args.images)
    for person in people:
        choices = [rng.choice(len(labels), p=t) for t in truth]
        Vote.objects.bulk_create([Vote(participant=person, stimulus=s, label=labels[c], response_ms=800)
                                  for s, c in zip(stimuli, choices, strict=False)], batch_size=2000)
    for m in range(args.models):
        model = ModelVersion.objects.create(name=f"bench-{m}-{time.time_ns()}", sha256=f"{time.time_ns():064x}",
                                            classes=labels, status="valid")
        Prediction.objects.bulk_create([Prediction(stimulus=s, model_version=model, ambiguity=0.5,
                                                   distribution=list(rng.dirichlet(np.ones(len(labels)))))
                                        for s in stimuli], batch_size=2000)
    print(f"built {args.images} images x {args.votes} votes x {args.models} models in "
          f"{time.perf_counter() - started:.1f}s ({connection.vendor})")

    client = Client()
    client.force_login(user)
    url = f"/studies/{study.slug}/compare/"
    client.get(url)  # warm-up
    page_times, raw_times, queries = [], [], 0
    for _ in range(args.repeats):
        started = time.perf_counter()
        list(Vote.objects.filter(stimulus__study=study).values_list("stimulus_id", "label").annotate(n=Count("pk")))
        list(Prediction.objects.filter(stimulus__study=study).values_list("model_version_id", "stimulus_id",
                                                                           "distribution"))
        raw_times.append(time.perf_counter() - started)
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            response = client.get(url)
            page_times.append(time.perf_counter() - started)
        assert response.status_code == 200
        queries = len(captured)
    cold_times = []
    for _ in range(args.repeats):  # the first view after a new vote recomputes the split-half ceiling
        cache.clear()
        started = time.perf_counter()
        client.get(url)
        cold_times.append(time.perf_counter() - started)
    page, raw, cold = min(page_times), min(raw_times), min(cold_times)
    print(f"comparison page : {page * 1000:7.0f} ms, {queries} queries (best of {args.repeats})")
    print(f"  ceiling uncached: {cold * 1000:7.0f} ms (first view after a new vote)")
    print(f"raw row fetch   : {raw * 1000:7.0f} ms")
    print(f"ratio page/raw  : {page / raw:7.1f}x")


if __name__ == "__main__":
    main()
