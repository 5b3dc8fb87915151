"""The comparison summary's three human ceilings, their Monte-Carlo s.e., and models as fractions of the
headline (noise floor)."""
import re

import pytest

from tests.factories import UserFactory
from tests.study.compare_data import build_study

pytestmark = pytest.mark.django_db


def test_summary_shows_three_ceilings_with_standard_errors_and_fractions(client):
    user = UserFactory()
    client.force_login(user)
    study, models = build_study(images=6, voters=3, owner=user)
    response = client.get(f"/studies/{study.slug}/compare/")
    assert response.status_code == 200
    rows = response.context["summaries"]
    ceilings = {row["ceiling"]: row for row in rows if row["model_id"] is None}
    assert set(ceilings) == {"noise_floor", "full_crowd", "split_half"}
    assert [row for row in rows if row.get("headline")] == [ceilings["noise_floor"]]
    # with 3 votes per image, halves of 1 and 2 votes understate what the crowd supports
    assert ceilings["noise_floor"]["top1_agreement"] > ceilings["split_half"]["top1_agreement"]
    assert ceilings["noise_floor"]["mean_js"] < ceilings["split_half"]["mean_js"]
    assert ceilings["full_crowd"]["top1_agreement"] is not None and ceilings["full_crowd"]["se"]["mean_js"] >= 0
    for row in rows:
        if row["model_id"] is not None:
            floor = ceilings["noise_floor"]
            assert row["fraction"]["top1_agreement"] == pytest.approx(row["top1_agreement"] / floor["top1_agreement"])
            assert row["fraction"]["mean_js"] == pytest.approx(floor["mean_js"] / row["mean_js"])
    html = response.content.decode()
    assert "Human noise floor (headline ceiling)" in html and "Human full-crowd ceiling" in html
    assert re.search(r'class="se"> ±0\.\d{3}', html)


def test_a_headline_above_the_noise_floor_says_how_to_read_it():
    from study.views.compare import _with_fraction

    above = _with_fraction("m picks the crowd's top emotion on 80% of images.", {"fraction": {"top1_agreement": 1.01}})
    below = _with_fraction("m picks the crowd's top emotion on 60% of images.", {"fraction": {"top1_agreement": 0.75}})
    assert "101%" in above and "read it as at the ceiling" in above
    assert "75%" in below and "ceiling" not in below.split("(the noise floor).")[1]
