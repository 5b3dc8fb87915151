"""Exports: every file, streamed; a round trip recomputes the same distributions and summary."""
import csv
import io
import json
import zipfile
from datetime import datetime

import numpy as np
import pytest
from django.core.management import CommandError, call_command

from study.analysis import metrics
from study.models import Participant, Vote
from study.selectors.compare import comparison_data, model_summaries
from tests.factories import UserFactory
from tests.study.compare_data import build_study

pytestmark = pytest.mark.django_db


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def test_export_round_trip_recomputes_distributions_and_summary(tmp_path):
    study, models = build_study(images=8, voters=5)
    excluded = Participant.objects.filter(study=study).first()
    excluded.excluded = True
    excluded.save()
    call_command("export_study", study.slug, out=tmp_path, zip=True, stdout=io.StringIO())
    labels = study.label_set.labels

    votes = read_csv(tmp_path / "votes.csv")
    assert len(votes) == Vote.objects.filter(stimulus__study=study).count() == 40
    assert sum(int(v["participant_excluded"]) for v in votes) == 8

    distributions = read_csv(tmp_path / "distributions.csv")
    counts = np.array([[int(row[name]) for name in labels] for row in distributions], dtype=float)
    data = comparison_data(study=study)
    np.testing.assert_array_equal(counts, data.counts)  # excluded participant left out, same order

    stimuli = read_csv(tmp_path / "stimuli.csv")
    shares = np.array([[float(row[f"p_{name}"]) for name in labels] for row in stimuli])
    np.testing.assert_allclose(shares, metrics.distribution(counts), atol=1e-6)

    predictions = read_csv(tmp_path / "predictions.csv")
    assert len(predictions) == 16
    probs = np.array([[float(r[f"p_{name}"]) for name in labels] for r in predictions if r["model"] == models[0].name])
    recomputed = metrics.summary(metrics.distribution(counts), probs)
    from_page = next(row for row in model_summaries(data) if row["name"] == models[0].name)
    assert recomputed.mean_js == pytest.approx(from_page["mean_js"], abs=1e-5)
    assert recomputed.top1_agreement == pytest.approx(from_page["top1_agreement"])

    assert len(read_csv(tmp_path / "participants.csv")) == 5
    assert "votes.csv" in (tmp_path / "codebook.md").read_text()
    with zipfile.ZipFile(tmp_path / f"{study.slug}.zip") as archive:
        names = archive.namelist()
        assert f"{study.slug}/votes.csv" in names and len(names) == 6
        assert archive.read(f"{study.slug}/votes.csv") == (tmp_path / "votes.csv").read_bytes()


def test_download_buttons_stream_files_for_the_owner_only(client):
    owner = UserFactory()
    study, _ = build_study(images=2, voters=2, owner=owner)
    client.force_login(owner)
    response = client.get(f"/studies/{study.slug}/export/votes.csv")
    assert response.status_code == 200 and response.streaming
    assert b"".join(response.streaming_content).decode().splitlines()[0].startswith("participant,")
    zipped = b"".join(client.get(f"/studies/{study.slug}/export/all.zip").streaming_content)
    assert zipfile.ZipFile(io.BytesIO(zipped)).testzip() is None
    assert client.get(f"/studies/{study.slug}/export/secrets.txt").status_code == 404
    client.force_login(UserFactory())
    assert client.get(f"/studies/{study.slug}/export/votes.csv").status_code == 404


def test_export_command_rejects_unknown_study(tmp_path):
    with pytest.raises(CommandError, match="no study"):
        call_command("export_study", "nope", out=tmp_path)


def test_postgresql_copy_export_matches_the_python_rows():
    """On PostgreSQL votes.csv is produced by COPY; it must carry the same values as the generic path."""
    from tests.services import require_postgres

    require_postgres()
    from study.exports import VOTES_HEADER, votes_copy_stream, votes_rows

    study, _ = build_study(images=3, voters=2)
    person = Participant.objects.filter(study=study).first()
    person.external_ids = {"PROLIFIC_PID": "p-1", "cohort": "a,b"}
    person.save()
    copied = list(csv.reader(io.StringIO(b"".join(votes_copy_stream(study)).decode())))
    assert copied[0] == VOTES_HEADER
    python_rows = [[str(v) for v in row] for row in votes_rows(study)]
    assert len(copied) - 1 == len(python_rows) == 6
    for got, expected in zip(copied[1:], python_rows, strict=False):
        assert got[:4] == expected[:4] and got[5:12] == expected[5:12]
        assert json.loads(got[4]) == json.loads(expected[4])  # same JSON, key order may differ
        assert datetime.fromisoformat(got[12]) == datetime.fromisoformat(expected[12])


def test_codebook_describes_every_column_of_every_file(tmp_path):
    study, _ = build_study(images=2, voters=2)
    call_command("export_study", study.slug, out=tmp_path, stdout=io.StringIO())
    codebook = (tmp_path / "codebook.md").read_text()
    labels = study.label_set.labels
    for name in ("votes.csv", "stimuli.csv", "participants.csv", "predictions.csv", "distributions.csv"):
        with open(tmp_path / name, newline="") as handle:
            header = next(csv.reader(handle))
        section = codebook.split(f"## {name}")[1].split("\n## ")[0]
        for column in header:
            generic = next((f"{prefix}<label>" for prefix in ("votes_", "p_") if column.startswith(prefix)
                            and column[len(prefix):] in labels), None)
            assert (generic or column) in section or (column in labels and "one column per label" in section), \
                f"{name}: column {column!r} is not in the codebook"


def test_export_command_reports_an_unusable_output_folder(tmp_path):
    study, _ = build_study(images=1, voters=1)
    blocker = tmp_path / "file.txt"
    blocker.write_text("not a folder")
    with pytest.raises(CommandError, match="cannot create"):
        call_command("export_study", study.slug, out=blocker, stdout=io.StringIO())
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "votes.csv").mkdir()  # a folder where a file must go
    with pytest.raises(CommandError, match="cannot write"):
        call_command("export_study", study.slug, out=tmp_path / "out", stdout=io.StringIO())
