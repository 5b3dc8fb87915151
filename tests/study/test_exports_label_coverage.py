"""Exports of a 7-class model on an 8-label study: predictions.csv and summary.csv name the missing labels,
summary.csv has both label scopes, and the codebook describes the columns."""
import csv
import io

import pytest

from study import exports
from tests.study.compare_data import build_coverage_study

pytestmark = pytest.mark.django_db


def read(study, name):
    return list(csv.DictReader(io.StringIO(b"".join(exports.stream(study, name)).decode())))


def test_predictions_csv_lists_each_models_missing_labels():
    study, *_ = build_coverage_study()
    rows = read(study, "predictions.csv")
    assert {row["model"]: row["missing_labels"] for row in rows} == {"fer7": "Contempt", "full8": ""}
    assert all(float(row["p_Contempt"]) == 0 for row in rows if row["model"] == "fer7")


def test_summary_csv_has_both_label_scopes_with_the_shared_figures():
    study, *_ = build_coverage_study()
    rows = read(study, "summary.csv")
    assert list(rows[0])[:5] == ["label_scope", "source", "kind", "model_id", "n_images"]
    every = {row["source"]: row for row in rows if row["label_scope"] == "all"}
    shared = {row["source"]: row for row in rows if row["label_scope"] == "shared"}
    assert set(shared) == {"fer7", "full8"}  # models only; ceilings and sources always cover all labels
    assert {row["kind"] for row in every.values()} == {"model", "ceiling"}
    assert every["fer7"]["missing_labels"] == shared["fer7"]["missing_labels"] == "Contempt"
    assert every["fer7"]["n_images"] == "4" and float(every["fer7"]["top1_agreement"]) == 0.5
    assert shared["fer7"]["n_images"] == "3" and float(shared["fer7"]["top1_agreement"]) == 1.0
    assert float(shared["fer7"]["mean_intersection"]) == pytest.approx(2.7 / 3)
    assert every["fer7"]["only_missing_images"] == shared["fer7"]["only_missing_images"] == "1"
    assert "Contempt" not in shared["fer7"]["labels_scored"].split(";")
    assert len(every["fer7"]["labels_scored"].split(";")) == 8
    assert float(shared["fer7"]["of_ceiling_top1_agreement"]) > 0
    assert every["full8"]["missing_labels"] == "" and shared["full8"]["top1_agreement"] == every["full8"]["top1_agreement"]
    ceiling = every["Human noise floor (headline ceiling)"]
    assert ceiling["kind"] == "ceiling" and ceiling["model_id"] == "" and ceiling["of_ceiling_mean_js"] == ""


def test_codebook_describes_the_new_columns_and_the_zip_carries_summary_csv():
    study, *_ = build_coverage_study()
    codebook = b"".join(exports.stream(study, "codebook.md")).decode()
    assert "## summary.csv" in codebook and "label_scope" in codebook and "only_missing_images" in codebook
    predictions_section = codebook[codebook.index("## predictions.csv"):codebook.index("## summary.csv")]
    assert "missing_labels" in predictions_section
    assert "summary.csv" in exports.EXPORT_FILES and "summary.csv" not in exports.SLOW_FILES
