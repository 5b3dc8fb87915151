"""Preview/test participants, outcome codes, the Prolific decline page, device types, pausing, exports."""
import csv
import io
import re

import pytest
from django.core.management import call_command
from django.test import Client

from study.models import Participant, Study
from study.selectors.compare import comparison_data
from study.selectors.participants import participant_cookie_name
from study.services.participants import device_type
from study.services.studies import participants_set_excluded
from tests.factories import StimulusFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def csv_rows(path) -> list[dict]:
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
          "Version/17.5 Mobile/15E148 Safari/604.1")


def make_study(n_images: int = 2, **fields) -> Study:
    study = StudyFactory(images_per_participant=n_images, **fields)
    StimulusFactory.create_batch(n_images, study=study)
    return study


def take_part(client: Client, study: Study, query: str = "", answer: str = "Happiness", agent: str = "") -> Participant:
    page = client.get(f"/s/{study.slug}/{query}")
    hidden = dict(re.findall(r'name="((?:p_[^"]+)|preview)" value="([^"]*)"', page.content.decode()))
    client.post(f"/s/{study.slug}/consent/", {"consent": "agree", **hidden}, HTTP_USER_AGENT=agent)
    client.post(f"/s/{study.slug}/start/")
    while True:
        trial = client.get(f"/s/{study.slug}/trial/")
        match = re.search(r'name="stimulus" value="([0-9a-f-]{36})"', trial.content.decode())
        if match is None:
            break
        client.post(f"/s/{study.slug}/trial/", {"stimulus": match.group(1), "label": answer, "response_ms": 100})
    return Participant.objects.get(token=client.cookies[participant_cookie_name(study)].value)


def test_owner_previews_a_draft_as_a_test_participant_left_out_of_the_data(client, tmp_path):
    owner = UserFactory(is_staff=False)
    study = make_study(owner=owner, status=Study.Status.DRAFT)
    assert b"not started yet" in Client().get(f"/s/{study.slug}/?preview=1").content  # strangers cannot preview
    client.force_login(owner)
    start = client.post(f"/studies/{study.slug}/preview/")
    assert start.status_code == 302 and start["Location"] == f"/s/{study.slug}/?preview=1"
    consent = client.get(start["Location"]).content.decode()
    assert 'id="preview-note"' in consent
    tester = take_part(client, study, "?preview=1")
    assert tester.is_test and tester.excluded and tester.votes.count() == 2 and tester.finished_at is not None
    assert b"Test run: not counted" in client.get(f"/s/{study.slug}/done/").content
    assert comparison_data(study=study, include_excluded=True).counts.sum() == 0
    assert participants_set_excluded(participants=Participant.objects.all(), excluded=False) == 0
    call_command("export_study", study.slug, out=tmp_path / "default", stdout=io.StringIO())
    call_command("export_study", study.slug, "--include-test", out=tmp_path / "all", stdout=io.StringIO())
    assert len(csv_rows(tmp_path / "default" / "votes.csv")) == 0
    votes = csv_rows(tmp_path / "all" / "votes.csv")
    assert len(votes) == 2 and {v["participant_is_test"] for v in votes} == {"1"}
    people = csv_rows(tmp_path / "all" / "participants.csv")
    assert people[0]["is_test"] == "1"
    download = client.get(f"/studies/{study.slug}/export/votes.csv?include_test=1")
    assert b"participant_is_test" in b"".join(download.streaming_content)


def test_preview_works_for_a_live_study_even_when_this_browser_took_part(client):
    owner = UserFactory(is_staff=False)
    study = make_study(owner=owner)
    client.force_login(owner)
    real = take_part(client, study)
    client.post(f"/studies/{study.slug}/preview/")
    tester = take_part(client, study, "?preview=1")
    assert not real.is_test and tester.is_test and tester.pk != real.pk


def test_decline_page_gives_the_no_consent_code_and_asks_prolific_participants_to_return(client):
    study = make_study(no_consent_code="NOCONSENT1", completion_url="https://app.prolific.com/submissions/complete")
    page = client.get(f"/s/{study.slug}/?PROLIFIC_PID=abc&STUDY_ID=s1&SESSION_ID=x1").content.decode()
    hidden = dict(re.findall(r'name="(p_[^"]+)" value="([^"]*)"', page))
    declined = client.post(f"/s/{study.slug}/consent/", {"consent": "decline", **hidden}).content.decode()
    assert "NOCONSENT1" in declined and 'id="return-note"' in declined and "Return submission" in declined
    assert "cc=NOCONSENT1" in declined
    plain = Client().post(f"/s/{study.slug}/consent/", {"consent": "decline"}).content.decode()
    assert "NOCONSENT1" in plain and 'id="return-note"' not in plain
    assert not Participant.objects.exists()


def test_finished_and_screened_out_participants_get_different_codes(client):
    study = make_study(completion_code="DONE", screened_out_code="SCREENED", gold_rate=0.5, gold_pass_threshold=1.0)
    StimulusFactory(study=study, is_gold=True, ground_truth="Anger")
    careless = take_part(client, study, answer="Happiness")
    careless.refresh_from_db()
    page = client.get(f"/s/{study.slug}/done/").content.decode()
    assert careless.excluded and "SCREENED" in page and "DONE" not in page
    careful = Client()
    take_part(careful, study, answer="Anger")
    assert "DONE" in careful.get(f"/s/{study.slug}/done/").content.decode()


@pytest.mark.parametrize("agent, kind", [
    (IPHONE, "phone"),
    ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Mobile Safari/537.36",
     "phone"),
    ("Mozilla/5.0 (iPad; CPU OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/604.1",
     "tablet"),
    ("Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36",
     "tablet"),
    ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36", "desktop"),
    ("", ""),
])
def test_device_type(agent, kind):
    assert device_type(agent) == kind


def test_phone_participants_are_told_to_tap(client):
    study = make_study()
    client.get(f"/s/{study.slug}/")
    client.post(f"/s/{study.slug}/consent/", {"consent": "agree"}, HTTP_USER_AGENT=IPHONE)
    page = client.get(f"/s/{study.slug}/instructions/").content.decode()
    assert "Tap the button" in page and "<kbd>" not in page
    desktop = Client()
    desktop.get(f"/s/{study.slug}/")
    desktop.post(f"/s/{study.slug}/consent/", {"consent": "agree"}, HTTP_USER_AGENT="Mozilla/5.0 (X11) Chrome/126.0")
    assert "press its key" in desktop.get(f"/s/{study.slug}/instructions/").content.decode()


def test_participants_csv_has_prolific_columns_device_and_fast_votes(client, tmp_path):
    study = make_study(fast_response_ms=300)
    take_part(client, study, "?PROLIFIC_PID=pp1&STUDY_ID=st1&SESSION_ID=se1", agent=IPHONE)  # votes at 100 ms
    call_command("export_study", study.slug, out=tmp_path, stdout=io.StringIO())
    person = csv_rows(tmp_path / "participants.csv")[0]
    assert (person["prolific_pid"], person["study_id"], person["session_id"], person["device_type"],
            person["n_too_fast"], person["is_test"]) == ("pp1", "st1", "se1", "phone", "2", "0")
    votes = csv_rows(tmp_path / "votes.csv")
    assert [v["too_fast"] for v in votes] == ["1", "1"] and "participant_is_test" not in votes[0]
    Study.objects.filter(pk=study.pk).update(fast_response_ms=0)
    call_command("export_study", study.slug, out=tmp_path / "off", stdout=io.StringIO())
    assert {v["too_fast"] for v in csv_rows(tmp_path / "off" / "votes.csv")} == {"0"}


def test_api_vote_list_leaves_out_test_participants_unless_asked(client):
    owner = UserFactory(is_staff=False)
    study = make_study(owner=owner)
    client.force_login(owner)
    take_part(client, study)
    client.post(f"/studies/{study.slug}/preview/")
    take_part(client, study, "?preview=1")
    default = client.get(f"/api/studies/{study.slug}/votes/").json()["results"]
    everything = client.get(f"/api/studies/{study.slug}/votes/?include_test=1").json()["results"]
    assert len(default) == 2 and len(everything) == 4
    assert sorted(vote["participant_is_test"] for vote in everything) == [False, False, True, True]


def test_comparison_with_one_vote_per_image_shows_no_nan(client):
    from tests.study.compare_data import build_study

    owner = UserFactory(is_staff=False)
    study, _models = build_study(images=3, voters=1, owner=owner)
    client.force_login(owner)
    page = client.get(f"/studies/{study.slug}/compare/").content.decode()
    text = re.sub(r"<script.*?</script>|<style.*?</style>|<[^>]+>", " ", page, flags=re.S)
    assert "nan" not in text.lower().split()
