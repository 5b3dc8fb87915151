"""The comparison page's label-scope toggle and the warnings of a model that lacks study labels."""
import html as html_lib
import re

import pytest

from tests.factories import UserFactory
from tests.study.compare_data import build_coverage_study, build_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def researcher(client):
    user = UserFactory()
    client.force_login(user)
    return user


def text(html: str) -> str:
    return re.sub(r"\s+", " ", html_lib.unescape(re.sub(r"<[^>]+>", " ", html)))


def test_default_is_all_labels_with_a_line_naming_the_missing_labels_and_the_shared_figures(client, researcher):
    study, seven, _ = build_coverage_study(owner=researcher)
    response = client.get(f"/studies/{study.slug}/compare/")
    assert response.status_code == 200 and response.context["label_scope"] == "all"
    html = response.content.decode()
    assert 'id="label-scope"' in html and 'name="labels" value="all" checked' in html
    assert re.search(r'id="missing-labels-line">fer7 has no class for <strong>Contempt</strong>', html)
    words = text(html)
    headline = next(h for h in response.context["headlines"] if h["name"] == "fer7")
    assert "picks the crowd's top emotion on 50% of 4 images" in headline["text"]
    assert ("fer7 has no class for Contempt (probability 0), so every vote for it counts against fer7 above. Over the "
            "7 labels it has, it picks the crowd's top emotion on 100% of 3 images") in words
    assert "1 image whose votes are all for Contempt is left out" in words
    assert "lacks Contempt · all 8 labels" in words and "its 7 labels: top-1 1.000" in words
    assert words.count("fer7 has no class for Contempt (probability 0; its JS here is over all labels)") == 4  # cards
    assert not next(h for h in response.context["headlines"] if h["name"] == "full8")["coverage"]
    model_row = html[html.index("<td>fer7"):][:html[html.index("<td>fer7"):].index("</tr>")]
    assert "±" not in model_row  # a model's figure has no Monte-Carlo error (only the ceilings have one)


def test_shared_toggle_scores_the_model_over_its_own_labels(client, researcher):
    study, seven, _ = build_coverage_study(owner=researcher)
    response = client.get(f"/studies/{study.slug}/compare/?labels=shared&model={seven.pk}")
    assert response.context["label_scope"] == "shared"
    html = response.content.decode()
    assert 'name="labels" value="shared" checked' in html and "shared labels only" in html
    row = next(r for r in response.context["summaries"] if r["name"] == "fer7")
    assert row["top1_agreement"] == 1.0 and row["n_images"] == 3
    assert len(response.context["confusion"]["labels"]) == 7 and "Contempt" not in response.context["confusion"]["labels"]
    words = text(html)
    assert "fer7 picks the crowd's top emotion on 100% of 3 images" in words
    assert ("its figures here are over the 7 labels it has, both distributions renormalised; 1 image whose votes are "
            "all for Contempt is left out") in words
    assert "Over all 8 labels, where Contempt has probability 0, it picks the crowd's top emotion on 50%" in words
    assert "lacks Contempt · over its 7 labels" in words
    # The image filters and the pager keep the choice.
    assert '<input type="hidden" name="labels" value="shared">' in html


def test_unknown_label_scope_falls_back_to_all_labels(client, researcher):
    study, *_ = build_coverage_study(owner=researcher)
    response = client.get(f"/studies/{study.slug}/compare/?labels=%3Cscript%3E")
    assert response.status_code == 200 and response.context["label_scope"] == "all"


def test_no_toggle_when_every_model_has_every_label(client, researcher):
    study, _ = build_study(images=2, voters=2, owner=researcher)
    response = client.get(f"/studies/{study.slug}/compare/")
    html = response.content.decode()
    assert 'id="label-scope"' not in html and 'id="missing-labels-line"' not in html
    assert "label-coverage" not in html
