"""Comparison view: imported sources beside / merged with / against live votes, and aggregation methods."""
import pytest

from study.models import Stimulus, VoteSource
from study.services.vote_imports import votes_import
from tests.factories import UserFactory
from tests.study.compare_data import build_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def setup(client):
    user = UserFactory()
    client.force_login(user)
    study, models = build_study(images=4, voters=5, owner=user)
    names = list(Stimulus.objects.filter(study=study).order_by("pk").values_list("original_name", flat=True))
    lines = ["filename,happy,sad,neutral"] + [f"{name},8,1,1" for name in names]
    votes_import(study=study, source_name="FER+ taggers", data="\n".join(lines).encode())
    return study, models, VoteSource.objects.get(study=study)


def summary(response, name):
    return next(row for row in response.context["summaries"] if row["name"] == name)


def test_live_reference_scores_each_imported_source_like_a_model(client, setup):
    study, _, _ = setup
    response = client.get(f"/studies/{study.slug}/compare/")
    assert response.status_code == 200
    row = summary(response, "FER+ taggers (imported) vs live votes")
    assert row["n_images"] == 4 and 0 <= row["mean_js"] <= 1
    assert "FER+ taggers (imported)" in response.content.decode()


def test_imported_source_as_the_reference_and_merged(client, setup):
    study, models, source = setup
    alone = client.get(f"/studies/{study.slug}/compare/?humans=source-{source.pk}")
    assert alone.context["humans"]["label"] == "FER+ taggers"
    assert [card["n"] for card in alone.context["cards"]] == [10] * 4
    floor = summary(alone, "Human noise floor (headline ceiling)")
    assert floor["n_images"] == 4
    merged = client.get(f"/studies/{study.slug}/compare/?humans=merged-{source.pk}")
    assert sorted(card["n"] for card in merged.context["cards"]) == [15] * 4
    assert summary(merged, models[0].name)["mean_js"] != summary(alone, models[0].name)["mean_js"]


@pytest.mark.parametrize("method", ["majority", "ferplus", "dawid_skene"])
def test_aggregation_changes_the_reference_and_hides_the_ceilings(client, setup, method):
    study, models, _ = setup
    response = client.get(f"/studies/{study.slug}/compare/?aggregation={method}")
    assert response.status_code == 200 and response.context["humans"]["aggregation"] == method
    assert not any(row.get("ceiling") for row in response.context["summaries"])
    assert f"distributions_{method}.csv" in response.content.decode()


def test_reliability_models_fall_back_for_an_imported_reference_and_bad_values_are_ignored(client, setup):
    study, _, source = setup
    response = client.get(f"/studies/{study.slug}/compare/?humans=source-{source.pk}&aggregation=glad")
    assert response.context["humans"]["aggregation"] == "raw" and "identity" in response.context["humans"]["note"]
    odd = client.get(f"/studies/{study.slug}/compare/?humans=source-999999&aggregation=median")
    assert odd.status_code == 200 and odd.context["humans"]["choice"] == "live"
    assert odd.context["humans"]["aggregation"] == "raw"
