"""Face crops in the exports: where each image came from (source photo, face box, score, index) is in
stimuli.csv, votes.csv and predictions.csv, and the codebook explains it; other studies' files are unchanged."""
import csv
import io

import pytest

from study import exports
from study.models import Stimulus, Study
from tests.study.compare_data import build_study

pytestmark = pytest.mark.django_db


def rows(study, name) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(exports.stream(study, name)).decode())))


def face_study(formula_name: str = "party.jpg"):
    """A study of 2 face crops from one photo and 1 image imported whole, with votes and predictions."""
    study, _ = build_study(images=3, voters=2)
    Study.objects.filter(pk=study.pk).update(face_crop="square")
    study.refresh_from_db()
    first, second, _whole = Stimulus.objects.filter(study=study).order_by("pk")
    for stimulus, index, box in ((first, 1, (10, 20, 80, 96)), (second, 2, (300, 25, 78, 90))):
        stimulus.metadata = {"source_photo": formula_name, "source_sha256": "ab" * 32, "faces_in_photo": 2,
                             "face_index": index, "face_x": box[0], "face_y": box[1], "face_w": box[2],
                             "face_h": box[3], "face_score": 0.9987, "face_crop": "square", "crop_margin": 0.2}
        stimulus.save()
    return study, first, second


def test_face_columns_in_stimuli_votes_and_predictions_and_the_codebook():
    study, first, second = face_study()
    expected = {"source_photo": "party.jpg", "face_index": "2", "face_x": "300", "face_y": "25", "face_w": "78",
                "face_h": "90", "face_score": "0.9987", "face_crop": "square"}
    for name, per_stimulus in (("stimuli.csv", 1), ("votes.csv", 2), ("predictions.csv", 2)):
        table = rows(study, name)
        assert list(table[0])[-len(exports.FACE_COLUMNS):] == exports.FACE_COLUMNS, name
        mine = [row for row in table if row["stimulus"] == str(second.public_id)]
        assert len(mine) == per_stimulus and all({k: row[k] for k in expected} == expected for row in mine), name
        whole = [row for row in table if row["stimulus"] not in (str(first.public_id), str(second.public_id))]
        assert whole and all(row["source_photo"] == "" and row["face_index"] == "" for row in whole), name
    codebook = b"".join(exports.stream(study, "codebook.md")).decode()
    assert "## Face columns" in codebook and "face_score" in codebook


def test_studies_without_face_crops_keep_their_columns():
    study, _ = build_study(images=2, voters=1)
    for name in ("stimuli.csv", "votes.csv", "predictions.csv"):
        assert "source_photo" not in rows(study, name)[0], name
    assert "Face columns" not in b"".join(exports.stream(study, "codebook.md")).decode()


def test_a_photo_name_that_looks_like_a_formula_is_neutralised():
    study, _, second = face_study(formula_name="=HYPERLINK(1).jpg")
    row = next(r for r in rows(study, "stimuli.csv") if r["stimulus"] == str(second.public_id))
    assert row["source_photo"] == "'=HYPERLINK(1).jpg"


def test_postgresql_copy_export_has_the_same_face_columns_as_the_generic_path():
    from tests.services import require_postgres

    require_postgres()
    study, _, _ = face_study(formula_name="=party.jpg")
    copied = list(csv.reader(io.StringIO(b"".join(exports.votes_copy_stream(study, faces=True)).decode())))
    python_rows = [["" if v is None else exports.neutralise_cell(str(v)) for v in row]
                   for row in exports.votes_rows(study, faces=True)]
    assert copied[0] == exports.votes_header(faces=True)
    width = len(exports.FACE_COLUMNS)
    assert [row[-width:] for row in copied[1:]] == [row[-width:] for row in python_rows]
    assert copied[1][-width] == "'=party.jpg"


def test_the_api_gives_each_stimulus_its_face_metadata_and_the_study_its_setting():
    from rest_framework.test import APIClient

    study, _, second = face_study()
    client = APIClient()
    client.force_authenticate(study.owner)
    assert client.get(f"/api/studies/{study.slug}/").json()["face_crop"] == "square"
    stimuli = client.get(f"/api/studies/{study.slug}/stimuli/").json()["results"]
    mine = next(s for s in stimuli if s["id"] == str(second.public_id))
    assert (mine["metadata"]["source_photo"], mine["metadata"]["face_index"]) == ("party.jpg", 2)
