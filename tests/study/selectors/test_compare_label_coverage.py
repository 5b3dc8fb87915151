"""model_summaries in both label scopes: a 7-class model on an 8-label study (values as in
tests/study/analysis/test_label_coverage.py, here through the database)."""
import pytest

from ml.labels import AFFECTNET7
from study.selectors.compare import comparison_data, model_summaries
from tests.study.compare_data import build_coverage_study

pytestmark = pytest.mark.django_db


def rows_by_name(rows):
    return {row["name"]: row for row in rows}


def test_all_labels_is_the_default_and_carries_the_shared_figures_beside_it():
    study, seven, eight = build_coverage_study()
    data = comparison_data(study=study)
    assert [c.missing for c in data.models] == [("Contempt",), ()]
    rows = rows_by_name(model_summaries(data))
    fer7 = rows["fer7"]
    assert fer7["label_scope"] == "all" and fer7["missing_labels"] == ["Contempt"]
    assert fer7["n_images"] == 4 and fer7["top1_agreement"] == 0.5 and len(fer7["labels_scored"]) == 8
    assert fer7["mean_intersection"] == pytest.approx((0.5 + 0 + 1 + 0.45) / 4)
    assert fer7["only_missing_images"] == 1
    shared = fer7["other_scope"]
    assert shared["label_scope"] == "shared" and shared["labels_scored"] == AFFECTNET7
    assert shared["n_images"] == 3 and shared["top1_agreement"] == 1.0
    assert shared["mean_intersection"] == pytest.approx(2.7 / 3)
    assert shared["fraction"] is None  # the shared labels' ceilings are computed only when that scope is shown
    full8 = rows["full8"]
    assert full8["missing_labels"] == [] and full8["other_scope"] is None and full8["only_missing_images"] == 0


def test_shared_scope_swaps_the_figures_and_leaves_ceilings_over_all_labels():
    study, *_ = build_coverage_study()
    data = comparison_data(study=study)
    every = model_summaries(data)
    rows = model_summaries(data, label_scope="shared")
    fer7 = rows_by_name(rows)["fer7"]
    assert fer7["label_scope"] == "shared" and fer7["n_images"] == 3 and fer7["top1_agreement"] == 1.0
    assert len(fer7["confusion"]) == 7 and fer7["labels_scored"] == AFFECTNET7
    assert fer7["other_scope"]["top1_agreement"] == 0.5 and fer7["other_scope"]["n_images"] == 4
    assert fer7["ceiling_split_half"]["n_images"] == 3  # the headline's crowd agreement over the same labels
    assert fer7["fraction"]["top1_agreement"] > 0  # of the noise floor of the shared labels' votes
    assert fer7["other_scope"]["fraction"] == rows_by_name(every)["fer7"]["fraction"]
    full8 = rows_by_name(rows)["full8"]
    assert full8["label_scope"] == "shared" and full8["top1_agreement"] == rows_by_name(every)["full8"]["top1_agreement"]
    ceilings = [row for row in rows if row.get("ceiling")]
    assert ceilings == [row for row in every if row.get("ceiling")] and len(ceilings) == 3


def test_an_unknown_label_scope_is_refused():
    with pytest.raises(ValueError, match="label_scope"):
        model_summaries(None, label_scope="some")  # refused before anything is read
