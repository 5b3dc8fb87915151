"""GET /api/studies/<slug>/metrics/?labels=all|shared: the summary in either label scope."""
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from ml.labels import AFFECTNET7
from tests.study.compare_data import build_coverage_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study_and_client():
    study, *_ = build_coverage_study()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=study.owner).key}")
    return study, client


def model_row(body, name="fer7"):
    return next(row for row in body["summaries"] if row["name"] == name)


def test_metrics_default_to_all_labels_and_name_the_missing_ones(study_and_client):
    study, client = study_and_client
    body = client.get(f"/api/studies/{study.slug}/metrics/").json()
    assert body["label_scope"] == "all"
    row = model_row(body)
    assert row["missing_labels"] == ["Contempt"] and row["label_scope"] == "all" and row["top1_agreement"] == 0.5
    assert row["only_missing_images"] == 1 and len(row["labels_scored"]) == 8
    assert row["other_scope"]["label_scope"] == "shared" and row["other_scope"]["top1_agreement"] == 1.0
    assert model_row(body, "full8")["missing_labels"] == [] and model_row(body, "full8")["other_scope"] is None


def test_metrics_over_the_shared_labels(study_and_client):
    study, client = study_and_client
    body = client.get(f"/api/studies/{study.slug}/metrics/?labels=shared").json()
    assert body["label_scope"] == "shared"
    row = model_row(body)
    assert row["label_scope"] == "shared" and row["labels_scored"] == AFFECTNET7
    assert row["n_images"] == 3 and row["top1_agreement"] == 1.0 and len(row["confusion"]) == 7
    assert row["other_scope"]["top1_agreement"] == 0.5


def test_unknown_label_scope_is_a_400_with_a_message(study_and_client):
    study, client = study_and_client
    response = client.get(f"/api/studies/{study.slug}/metrics/?labels=some")
    assert response.status_code == 400 and "labels" in response.json()
