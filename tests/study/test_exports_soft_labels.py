"""Exports added for issue 12: float32 round-trip in predictions.csv, soft_labels.csv and
distributions_<method>.csv."""
import csv
import io

import numpy as np
import pytest

from study import exports
from study.models import Prediction, Stimulus, Vote
from tests.study.compare_data import build_study

pytestmark = pytest.mark.django_db


def read(study, name) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(exports.stream(study, name)).decode())))


def test_predictions_round_trip_float32():
    study, _ = build_study(images=3, voters=2, models=1)
    prediction = Prediction.objects.filter(stimulus__study=study).first()
    value = float(np.float32(0.123456789))
    prediction.distribution = [value, *[(1 - value) / 6] * 6]
    prediction.save()
    row = next(r for r in read(study, "predictions.csv") if r["stimulus"] == str(prediction.stimulus.public_id))
    first = study.label_set.labels[0]
    assert np.float32(row[f"p_{first}"]) == np.float32(value) and len(row[f"p_{first}"]) > 8


def test_soft_labels_hold_image_path_votes_and_shares():
    study, _ = build_study(images=4, voters=5, models=0)
    rows = read(study, "soft_labels.csv")
    assert len(rows) == 4
    labels = study.label_set.labels
    for row in rows:
        stimulus = Stimulus.objects.get(study=study, original_name=row["file"])
        assert row["image"] == stimulus.image.name and int(row["n_votes"]) == 5
        shares = [float(row[f"p_{label}"]) for label in labels]
        assert sum(shares) == pytest.approx(1)
        votes = list(Vote.objects.filter(stimulus=stimulus).values_list("label", flat=True))
        assert shares == pytest.approx([votes.count(label) / 5 for label in labels])


@pytest.mark.parametrize("method", ["raw", "majority", "ferplus", "dawid_skene"])
def test_distributions_by_method(method):
    study, _ = build_study(images=5, voters=6, models=0)
    rows = read(study, f"distributions_{method}.csv")
    labels = study.label_set.labels
    assert len(rows) == 5
    for row in rows:
        shares = np.array([float(row[f"p_{label}"]) for label in labels])
        assert shares.sum() == pytest.approx(1) and int(row["n_votes"]) == 6
        if method == "majority":
            assert set(np.round(shares[shares > 0], 6)) == {round(1 / (shares > 0).sum(), 6)}
