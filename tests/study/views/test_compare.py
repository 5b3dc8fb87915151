"""Comparison page: access, content, sorting/filtering, and a constant number of queries."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from study.models import ModelVersion
from tests.factories import UserFactory
from tests.study.compare_data import attach_lambda_export, build_study, lambdas_csv

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher(client):
    user = UserFactory()
    client.force_login(user)
    return user


def test_page_shows_summary_ceiling_and_cards(client, researcher):
    study, models = build_study(images=5, voters=6, owner=researcher)
    response = client.get(f"/studies/{study.slug}/compare/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Human split-half ceiling" in html and models[0].name in html and models[1].name in html
    assert html.count('class="card"') == 5 and "chart-data" in html and "/static/vendor/plotly.min.js" in html
    cards = response.context["cards"]
    assert all([m["name"] for m in card["models"]] == sorted(m.name for m in models) for card in cards)
    assert all(0 <= m["js"] <= 1 and isinstance(m["match"], bool) for card in cards for m in card["models"])


def test_other_researchers_get_404(client):
    study, _ = build_study(images=1, voters=1)
    client.force_login(UserFactory())
    assert client.get(f"/studies/{study.slug}/compare/").status_code == 404


@pytest.mark.parametrize("query", ["sort=ambiguity", "sort=confidence&min_votes=3", "label=Fear", "page=99",
                                   "sort=nonsense&min_votes=abc", "tab=uncertainty"])
def test_sorts_filters_and_bad_parameters_never_fail(client, researcher, query):
    study, models = build_study(images=4, voters=3, owner=researcher)
    assert client.get(f"/studies/{study.slug}/compare/?{query}&model={models[0].pk}").status_code == 200


def test_sort_by_disagreement_puts_the_highest_js_first(client, researcher):
    study, models = build_study(images=6, voters=5, owner=researcher)
    response = client.get(f"/studies/{study.slug}/compare/?sort=js&model={models[0].pk}")
    js = [card["js"] for card in response.context["cards"]]
    assert js == sorted(js, reverse=True)


# The page's fixed set of reads: study, label set, votes, predictions, models, imported sources, provenance, ...
COMPARE_PAGE_QUERIES = 14


def test_query_count_does_not_grow_with_study_size(client, researcher):
    counts = []
    for images in (3, 30):
        study, _ = build_study(images=images, voters=4, owner=researcher)
        with CaptureQueriesContext(connection) as queries:
            assert client.get(f"/studies/{study.slug}/compare/").status_code == 200
        counts.append(len(queries))
    assert counts[0] == counts[1] <= COMPARE_PAGE_QUERIES, counts


def test_plotly_bundle_is_found_in_the_installed_package():
    from django.contrib.staticfiles import finders

    found = finders.find("vendor/plotly.min.js")
    assert found and found.endswith("package_data/plotly.min.js")


def test_whitenoise_serves_plotly_in_development_through_the_finders(settings):
    from django.test import Client

    settings.WHITENOISE_USE_FINDERS = True  # what DEBUG turns on
    response = Client().get("/static/vendor/plotly.min.js")
    assert response.status_code == 200 and b"plotly" in b"".join(response.streaming_content)[:5000].lower()


def test_collectstatic_copies_plotly_for_whitenoise_in_production(settings, tmp_path):
    from django.core.management import call_command
    from django.test import Client

    settings.STATIC_ROOT = tmp_path / "static"
    settings.WHITENOISE_USE_FINDERS = False
    call_command("collectstatic", interactive=False, verbosity=0)
    assert (settings.STATIC_ROOT / "vendor" / "plotly.min.js").stat().st_size > 1_000_000
    response = Client().get("/static/vendor/plotly.min.js")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/javascript")


def test_split_half_ceiling_is_cached_by_the_vote_counts(monkeypatch):
    import numpy as np

    from study.analysis import metrics
    from study.selectors.compare import split_half_ceiling_cached

    calls = []
    real = metrics.split_half_ceiling
    monkeypatch.setattr(metrics, "split_half_ceiling", lambda *a, **k: calls.append(1) or real(*a, **k))
    counts = np.array([[3, 1, 0], [0, 2, 2]])
    first = split_half_ceiling_cached(counts, seed=1)
    assert split_half_ceiling_cached(counts, seed=1)["mean_js"] == first["mean_js"] and len(calls) == 1
    split_half_ceiling_cached(counts + np.array([[1, 0, 0], [0, 0, 0]]), seed=1)  # a new vote: recomputed
    assert len(calls) == 2


def test_uncertainty_tab_lists_training_images_by_lambda_with_flip_separation(client, researcher):
    import numpy as np

    study, models = build_study(images=4, voters=3, owner=researcher)
    rng = np.random.default_rng(0)
    lams = rng.random(200)
    flipped = lams < 0.2  # a perfect separation: AUROC 1
    attach_lambda_export(models[0], lambdas_csv(lams, flipped))
    response = client.get(f"/studies/{study.slug}/compare/?tab=uncertainty")
    assert response.status_code == 200
    export = response.context["uncertainty"]["lambdas"][0]
    assert export["count"] == 200 and export["error"] == ""
    assert [r["lambda_value"] for r in export["lowest"]] == pytest.approx(sorted(lams)[:25], abs=1e-6)
    assert [r["lambda_value"] for r in export["highest"]] == pytest.approx(sorted(lams)[::-1][:25], abs=1e-6)
    assert export["flipped"]["n"] == int(flipped.sum()) and export["flipped"]["auroc"] == 1.0
    html = response.content.decode()
    assert "Figure 4" in html and "train/img_" in html and "AUROC" in html
    assert len(response.context["uncertainty"]["by_human"]) == 4 and f"/studies/{study.slug}/images/" in html  # faces


@pytest.mark.parametrize("text, message", [
    ("index,path,score\n0,a.png,0.3\n", "no 'lambda' column"),
    ("\x00\x01binary\xff", ""),
    ("index,lambda,flipped\n0,0.4,0\n1,abc,1\n2,,0\n3,nan,1\n4,0.1,1\n", ""),
])
def test_a_broken_lambda_export_is_reported_not_a_server_error(client, researcher, text, message):
    study, models = build_study(images=2, voters=2, owner=researcher)
    attach_lambda_export(models[0], text)
    response = client.get(f"/studies/{study.slug}/compare/?tab=uncertainty")
    assert response.status_code == 200
    export = response.context["uncertainty"]["lambdas"][0]
    assert message in export["error"]
    if text.startswith("index,lambda"):
        assert export["count"] == 2 and export["skipped"] == 3
        assert [r["lambda_value"] for r in export["lowest"]] == [0.1, 0.4]


def test_uncertainty_tab_uses_a_constant_number_of_queries(client, researcher, django_assert_max_num_queries):
    study, _ = build_study(images=20, voters=3, owner=researcher)
    with django_assert_max_num_queries(COMPARE_PAGE_QUERIES):
        assert client.get(f"/studies/{study.slug}/compare/?tab=uncertainty").status_code == 200


def test_each_chart_carries_its_own_images_shares_and_intervals(client, researcher):
    import numpy as np

    from study.analysis import metrics
    from study.models import Vote

    study, _ = build_study(images=7, voters=5, owner=researcher)
    labels = study.label_set.labels
    response = client.get(f"/studies/{study.slug}/compare/?sort=ambiguity")
    for card in response.context["cards"]:
        chosen = list(Vote.objects.filter(stimulus__public_id=card["id"]).values_list("label", flat=True))
        counts = np.array([chosen.count(label) for label in labels])
        chart = response.context["charts"][card["id"]]
        low, high = metrics.dirichlet_interval(counts)
        np.testing.assert_allclose(chart["human"], counts / counts.sum(), atol=1e-4)
        np.testing.assert_allclose(chart["low"], low, atol=1e-4)
        np.testing.assert_allclose(chart["high"], high, atol=1e-4)


def test_each_model_is_named_with_its_training_data_and_a_domain_warning(client, researcher):
    study, models = build_study(images=3, voters=2, owner=researcher)
    study.stimuli.update(source="synthetic seed=0")
    models[0].training_data, models[0].training_domain = "FER2013 (real faces)", "photo"
    models[0].save()
    models[1].training_data, models[1].training_domain = "EmoStudy synthetic faces", "synthetic"
    models[1].save()
    html = client.get(f"/studies/{study.slug}/compare/").content.decode()
    assert "trained on FER2013 (real faces)" in html and "trained on EmoStudy synthetic faces" in html
    assert html.count("expect it to be unreliable here") == 1  # only the photo model on synthetic faces
    study.stimuli.update(source="upload")
    models[1].classes = [label for label in study.label_set.labels if label != "Surprise"]
    models[1].save()
    html = client.get(f"/studies/{study.slug}/compare/").content.decode()
    assert "trained on synthetic faces, but these images are photographs" in html
    assert "has no class for Surprise: probability 0" in html


def test_the_page_focuses_by_default_on_a_model_trained_on_images_like_the_studys(client, researcher):
    study, (synthetic, photo) = build_study(images=4, voters=3, owner=researcher)  # the images are photographs
    ModelVersion.objects.filter(pk=synthetic.pk).update(name="A synthetic-face model", training_domain="synthetic")
    ModelVersion.objects.filter(pk=photo.pk).update(name="B photo model", training_domain="photo")
    response = client.get(f"/studies/{study.slug}/compare/?tab=uncertainty")
    assert response.context["uncertainty"]["model"] == "B photo model"  # not the first by name
    chosen = client.get(f"/studies/{study.slug}/compare/?tab=uncertainty&model={synthetic.pk}")
    assert chosen.context["uncertainty"]["model"] == "A synthetic-face model"
