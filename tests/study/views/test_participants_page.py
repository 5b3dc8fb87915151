"""The participants page: quality columns, sorting, one-click exclusion that keeps the votes."""
import pytest

from study.models import Participant, Vote
from tests.factories import UserFactory
from tests.study.compare_data import build_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(client):
    user = UserFactory()
    client.force_login(user)
    study, _ = build_study(images=6, voters=5, models=1, owner=user)
    # a sixth voter who always says "Fear": a spammer the page should rank last by crowd agreement
    spammer = Participant.objects.create(study=study, token=f"{study.slug}-spam")
    Vote.objects.bulk_create([Vote(participant=spammer, stimulus=s, label="Fear", response_ms=120)
                              for s in study.stimuli.all()])
    return study, spammer


def test_page_lists_quality_and_sorts(client, study):
    study, spammer = study
    response = client.get(f"/studies/{study.slug}/participants/?sort=loo&dir=asc")
    assert response.status_code == 200
    rows = response.context["rows"]
    assert len(rows) == 6 and all(row["n_votes"] == 6 for row in rows)
    assert [r["loo"] for r in rows] == sorted(r["loo"] for r in rows)
    spam_row = next(r for r in rows if r["participant"] == spammer)
    assert spam_row["rt"]["fast_share"] == 1.0 and len(spam_row["confusion_rows"]) == 7
    assert all(0 <= r["skill"] <= 1 for r in rows) and len(rows[0]["model_values"]) == 1
    descending = client.get(f"/studies/{study.slug}/participants/?sort=fast&dir=desc").context["rows"]
    assert descending[0]["participant"] == spammer
    for odd in ("sort=nonsense", "sort=model:nope&dir=desc"):
        assert client.get(f"/studies/{study.slug}/participants/?{odd}").status_code == 200


def test_exclusion_keeps_votes_and_can_be_undone(client, study):
    study, spammer = study
    url = f"/studies/{study.slug}/participants/{spammer.public_id}/exclusion/"
    assert client.post(url, {"excluded": "1"}).status_code == 302
    spammer.refresh_from_db()
    assert spammer.excluded and Vote.objects.filter(participant=spammer).count() == 6
    page = client.get(f"/studies/{study.slug}/participants/").content.decode()
    assert 'class="excluded"' in page and ">Include<" in page
    client.post(url, {"excluded": "0"})
    spammer.refresh_from_db()
    assert not spammer.excluded


def test_other_researchers_get_404(client, study):
    study, spammer = study
    client.force_login(UserFactory())
    assert client.get(f"/studies/{study.slug}/participants/").status_code == 404
    assert client.post(f"/studies/{study.slug}/participants/{spammer.public_id}/exclusion/",
                       {"excluded": "1"}).status_code == 404


def test_simulated_participants_are_marked_and_have_no_response_times(client, study):
    study, _ = study
    bot = Participant.objects.create(study=study, token=f"{study.slug}-sim", is_simulated=True)
    Vote.objects.bulk_create([Vote(participant=bot, stimulus=s, label="Happiness", response_ms=0)
                              for s in study.stimuli.all()])
    response = client.get(f"/studies/{study.slug}/participants/")
    row = next(r for r in response.context["rows"] if r["participant"] == bot)
    assert row["rt"] == {}  # not "0 ms" and "100% under 0.5 s": no time was measured
    html = response.content.decode()
    assert html.count('class="r-badge"') == 1 and ">simulated</span>" in html
    for order in ("sort=rt&dir=asc", "sort=fast&dir=desc"):  # no value sorts last
        assert client.get(f"/studies/{study.slug}/participants/?{order}").context["rows"][-1]["participant"] == bot
