"""Participant pages through Django's test client: consent first, URL parameters, 4xx, closed/full, finish."""
import re

import pytest
from django.test import Client
from django.urls import reverse

from study.models import Participant, Study, Vote
from study.selectors.participants import participant_cookie_name
from study.services.participants import study_completion_url, user_agent_family
from tests.factories import StimulusFactory, StudyFactory

pytestmark = pytest.mark.django_db

CHROME_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"


def url(name: str, study: Study, *args) -> str:
    return reverse(f"study:participant-{name}", args=[study.slug, *args])


def make_study(n_images: int = 3, **fields) -> Study:
    study = StudyFactory(images_per_participant=n_images, **fields)
    StimulusFactory.create_batch(n_images, study=study)
    return study


def join(client: Client, study: Study, query: str = "") -> Participant:
    """Open the link, agree, start: the participant the client now is."""
    page = client.get(url("entry", study) + query)
    assert page.status_code == 200
    hidden = dict(re.findall(r'name="(p_[^"]+)" value="([^"]*)"', page.content.decode()))
    client.post(url("consent", study), {"consent": "agree", **hidden}, HTTP_USER_AGENT=CHROME_UA)
    client.post(url("start", study))
    return Participant.objects.get(token=client.cookies[participant_cookie_name(study)].value)


def current_stimulus(client: Client, study: Study) -> str:
    page = client.get(url("trial", study))
    assert page.status_code == 200
    return re.search(r'name="stimulus" value="([0-9a-f-]{36})"', page.content.decode()).group(1)


def test_unknown_study_is_404(client):
    assert client.get("/s/no-such-study/").status_code == 404


def test_entry_shows_consent_and_creates_nobody_until_agreed(client):
    study = make_study(consent_text="Your answers stay anonymous.")
    page = client.get(url("entry", study))
    assert b"Your answers stay anonymous." in page.content and b"I agree" in page.content
    assert not Participant.objects.exists()
    declined = client.post(url("consent", study), {"consent": "decline"})
    assert declined.status_code == 200 and b"No data was recorded" in declined.content
    assert not Participant.objects.exists()


def test_trials_and_instructions_require_consent_first(client):
    study = make_study()
    for name in ("trial", "instructions", "done"):
        response = client.get(url(name, study))
        assert response.status_code == 302 and response.url == url("entry", study)
    assert client.post(url("start", study)).url == url("entry", study)
    assert not Participant.objects.exists()


def test_url_parameters_are_captured_into_external_ids(client):
    study = make_study(url_parameters=["cohort"])
    participant = join(client, study, "?PROLIFIC_PID=pp-1&STUDY_ID=st-2&SESSION_ID=se-3&cohort=B&evil=x")
    assert participant.external_ids == {"PROLIFIC_PID": "pp-1", "STUDY_ID": "st-2", "SESSION_ID": "se-3", "cohort": "B"}
    assert participant.user_agent_family == "Chrome"
    assert participant.consented_at is not None
    assert participant.assignments.count() == 3


def test_participant_cookie_is_opaque_httponly_and_samesite_lax(client):
    study = make_study()
    participant = join(client, study)
    cookie = client.cookies[participant_cookie_name(study)]
    assert cookie["httponly"] and cookie["samesite"] == "Lax"
    assert cookie.value == participant.token and len(participant.token) >= 40


def test_forms_are_csrf_protected():
    study = make_study()
    client = Client(enforce_csrf_checks=True)
    assert client.post(url("consent", study), {"consent": "agree"}).status_code == 403
    assert not Participant.objects.exists()


def test_instructions_list_the_labels_with_their_keys(client):
    study = make_study()
    client.get(url("entry", study))
    client.post(url("consent", study), {"consent": "agree"})
    page = client.get(url("instructions", study)).content.decode()
    for key, label in enumerate(study.label_set.labels, start=1):
        assert f"<kbd>{key}</kbd><span>{label}</span>" in page


def test_trial_page_shows_progress_buttons_and_preloads_the_next_image(client):
    study = make_study()
    participant = join(client, study)
    page = client.get(url("trial", study)).content.decode()
    first, second = participant.assignments.order_by("position")[:2]
    assert "1 of 3" in page
    assert f'value="{first.stimulus.public_id}"' in page
    assert f'data-next-image="{url("image", study, second.stimulus.public_id)}"' in page
    assert page.count('class="choice"') == 7 and 'data-key="7"' in page
    assert "csrfmiddlewaretoken" in page


def test_vote_redirects_to_the_next_trial_and_reload_resumes_there(client):
    study = make_study()
    participant = join(client, study)
    sequence = list(participant.assignments.order_by("position"))
    response = client.post(
        url("trial", study), {"stimulus": current_stimulus(client, study), "label": "Fear", "response_ms": "812"}
    )
    assert response.status_code == 302 and response.url == url("trial", study)
    assert current_stimulus(client, study) == str(sequence[1].stimulus.public_id)
    assert current_stimulus(client, study) == str(sequence[1].stimulus.public_id)  # reload: same trial
    page = client.get(url("trial", study)).content.decode()
    assert "2 of 3" in page
    assert client.get(url("entry", study)).url == url("trial", study)  # the study link resumes too


def test_double_submit_stores_one_vote(client):
    study = make_study()
    join(client, study)
    stimulus = current_stimulus(client, study)
    for label in ("Fear", "Anger"):  # a double click, then the back button and another choice
        client.post(url("trial", study), {"stimulus": stimulus, "label": label, "response_ms": "500"})
    assert list(Vote.objects.values_list("label", flat=True)) == ["Fear"]


def test_vote_without_javascript_uses_the_server_measured_time(client):
    study = make_study()
    join(client, study)
    page = client.get(url("trial", study)).content.decode()
    stimulus = re.search(r'name="stimulus" value="([^"]+)"', page).group(1)
    shown = re.search(r'name="shown" value="([^"]+)"', page).group(1)
    client.post(url("trial", study), {"stimulus": stimulus, "label": "Fear", "response_ms": "", "shown": shown})
    vote = Vote.objects.get()
    assert 0 <= vote.response_ms < 60_000


def test_bad_votes_are_400_with_a_message(client):
    study = make_study()
    participant = join(client, study)
    stimulus = current_stimulus(client, study)
    foreign = StimulusFactory(study=study)
    cases = [
        ({"stimulus": stimulus, "label": "Bored", "response_ms": "500"}, b"Unknown emotion"),
        ({"stimulus": str(foreign.public_id), "label": "Fear", "response_ms": "500"}, b"not one of your trials"),
        ({"stimulus": "not-a-uuid", "label": "Fear", "response_ms": "500"}, b"image id"),
        ({"stimulus": stimulus, "label": "Fear", "response_ms": "-5"}, b"response_ms"),
        ({"stimulus": stimulus, "label": "Fear", "response_ms": "", "shown": "forged"}, b"response_ms is required"),
    ]
    for data, message in cases:
        response = client.post(url("trial", study), data)
        assert response.status_code == 400 and message in response.content, data
    assert not participant.votes.exists()


def test_json_votes_answer_json_including_errors(client):
    study = make_study()
    join(client, study)
    stimulus = current_stimulus(client, study)
    bad = client.post(url("trial", study), {"stimulus": stimulus, "label": "Nope", "response_ms": 5},
                      content_type="application/json", HTTP_ACCEPT="application/json")
    assert bad.status_code == 400 and bad.json()["error"] == "unknown_label"
    good = client.post(url("trial", study), {"stimulus": stimulus, "label": "Fear", "response_ms": 640},
                       content_type="application/json", HTTP_ACCEPT="application/json")
    assert good.status_code == 200
    assert good.json()["vote"]["response_ms"] == 640 and good.json()["progress"] == {"answered": 1, "total": 3}
    assert good.json()["next_url"] == url("trial", study)
    for body in ("{not json", "[1, 2]", f'{{"stimulus": "{stimulus}", "label": "Fear", "response_ms": Infinity}}'):
        broken = client.generic("POST", url("trial", study), body, content_type="application/json",
                                HTTP_ACCEPT="application/json")
        assert broken.status_code == 400 and broken.json()["message"], body


def test_one_participant_cannot_vote_on_or_fetch_anothers_images(client):
    study = make_study(n_images=2, votes_per_image=5)
    study.images_per_participant = 1
    study.save()
    alice = join(client, study)
    other = Client()
    join(other, study)
    alice_image = alice.assignments.get().stimulus
    response = other.post(url("trial", study), {"stimulus": str(alice_image.public_id), "label": "Fear", "response_ms": "5"})
    assert response.status_code == 400
    assert other.get(url("image", study, alice_image.public_id)).status_code == 404
    assert Client().get(url("image", study, alice_image.public_id)).status_code == 404
    mine = client.get(url("image", study, alice_image.public_id))
    assert mine.status_code == 200 and mine["Content-Type"] == "image/png"
    assert b"".join(mine.streaming_content).startswith(b"\x89PNG")


@pytest.mark.parametrize(
    ("status", "text"),
    [(Study.Status.CLOSED, b"closed"), (Study.Status.PAUSED, b"paused"), (Study.Status.DRAFT, b"not started")],
)
def test_study_that_is_not_live_shows_a_clear_page(client, status, text):
    study = make_study(status=status)
    page = client.get(url("entry", study))
    assert page.status_code == 200 and text in page.content and b"I agree" not in page.content
    assert client.post(url("consent", study), {"consent": "agree"}).status_code == 200
    assert not Participant.objects.exists()


def test_paused_study_lets_a_participant_who_started_finish_by_default(client):
    study = make_study()
    join(client, study)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.PAUSED)
    assert b'name="stimulus"' in client.get(url("trial", study)).content
    newcomer = Client()
    assert b"paused" in newcomer.get(url("entry", study)).content


def test_paused_study_stops_a_participant_midway_and_lets_them_resume(client):
    study = make_study()
    join(client, study)
    Study.objects.filter(pk=study.pk).update(status=Study.Status.PAUSED, finish_when_paused=False)
    page = client.get(url("trial", study))
    assert page.status_code == 200 and b"paused" in page.content and b'name="stimulus"' not in page.content
    Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE)
    assert b'name="stimulus"' in client.get(url("trial", study)).content


def test_full_study_shows_a_full_page_to_newcomers(client, monkeypatch):
    study = make_study(n_images=2, votes_per_image=1)
    join(client, study)  # takes both images
    _seconds_pass(monkeypatch, 3)  # the verdict the join's pages saw ("not full") is older than 2 s
    newcomer = Client()
    page = newcomer.get(url("entry", study))
    assert page.status_code == 200 and b"This study is full" in page.content
    # The participant already in keeps going.
    assert b'name="stimulus"' in client.get(url("trial", study)).content


def _seconds_pass(monkeypatch, seconds: float) -> None:
    """time.monotonic() as the selectors see it, `seconds` later than now."""
    import time

    from study.selectors import participants

    later = time.monotonic() + seconds
    monkeypatch.setattr(participants.time, "monotonic", lambda: later)


def _count_full_checks(monkeypatch) -> list:
    from study.selectors import participants

    calls, real = [], participants.study_is_full
    monkeypatch.setattr(participants, "study_is_full", lambda **kw: calls.append(kw["study"].pk) or real(**kw))
    return calls


def test_the_link_and_consent_reuse_a_recent_full_verdict(client, monkeypatch):
    """Many people opening a link at once do not each pay for the count (STUDY_FULL_CHECK_SECONDS, default 2)."""
    study = make_study(n_images=3)
    calls = _count_full_checks(monkeypatch)
    for _ in range(3):
        assert b"I agree" in Client().get(url("entry", study)).content
    assert calls == [study.pk]
    join(client, study)  # the link and consent: the same verdict again; Start counts for itself
    assert calls == [study.pk]
    _seconds_pass(monkeypatch, 2.5)
    Client().get(url("entry", study))
    assert calls == [study.pk, study.pk]


def test_within_the_window_start_still_says_full_and_takes_nothing(client, monkeypatch):
    """A verdict a second old may let a newcomer reach consent after the last places went; Start counts afresh
    under the study's lock and turns them away, as it does when two people consent at the same moment."""
    study = make_study(n_images=2, votes_per_image=1)
    newcomer = Client()
    assert b"I agree" in newcomer.get(url("entry", study)).content  # "not full", remembered
    join(client, study)  # takes both places
    assert b"I agree" in newcomer.get(url("entry", study)).content  # within 2 s: the remembered verdict
    newcomer.post(url("consent", study), {"consent": "agree"})
    page = newcomer.post(url("start", study))
    assert page.status_code == 200 and b"This study is full" in page.content
    late = Participant.objects.get(token=newcomer.cookies[participant_cookie_name(study)].value)
    assert not late.assignments.exists()


def test_a_study_edit_or_zero_seconds_counts_afresh(client, settings, monkeypatch):
    study = make_study(n_images=2, votes_per_image=1)
    calls = _count_full_checks(monkeypatch)
    Client().get(url("entry", study))
    study.votes_per_image = 0  # an edit (updated_at moves): the next page counts again, and finds it full
    study.save()
    assert b"This study is full" in Client().get(url("entry", study)).content
    assert len(calls) == 2
    settings.STUDY_FULL_CHECK_SECONDS = 0
    Client().get(url("entry", study))
    Client().get(url("entry", study))
    assert len(calls) == 4


def finish(client: Client, study: Study) -> None:
    for _ in range(study.images_per_participant):
        client.post(url("trial", study),
                    {"stimulus": current_stimulus(client, study), "label": "Fear", "response_ms": "400"})


def test_finish_shows_the_completion_code_without_redirect_when_no_url(client):
    study = make_study(n_images=2, completion_code="ABC123")
    join(client, study)
    finish(client, study)
    assert client.get(url("trial", study)).url == url("done", study)
    page = client.get(url("done", study))
    assert b"ABC123" in page.content and b"http-equiv" not in page.content


def test_finish_sends_the_participant_to_the_completion_url_with_the_code(client):
    study = make_study(n_images=2, completion_code="C0DE", completion_url="https://app.example.org/complete?src=x")
    participant = join(client, study)
    finish(client, study)
    page = client.get(url("done", study)).content.decode()
    target = "https://app.example.org/complete?src=x&amp;cc=C0DE"
    assert f'href="{target}"' in page and f'content="5;url={target}"' in page
    participant.refresh_from_db()
    assert participant.finished_at is not None


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ("https://app.prolific.com/submissions/complete", "https://app.prolific.com/submissions/complete?cc=K1"),
        ("https://x.org/done?a=1&b=", "https://x.org/done?a=1&b=&cc=K1"),
        ("https://x.org/done?cc=OLD#top", "https://x.org/done?cc=K1#top"),
        ("", ""),
    ],
)
def test_completion_url_appends_the_code_respecting_the_query(configured, expected):
    assert study_completion_url(StudyFactory.build(completion_url=configured, completion_code="K1")) == expected


@pytest.mark.parametrize(
    ("agent", "family"),
    [
        (CHROME_UA, "Chrome"),
        ("Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0", "Firefox"),
        ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
         "Version/17.5 Mobile/15E148 Safari/604.1", "Safari"),
        (CHROME_UA + " Edg/126.0", "Edge"),
        ("curl/8.5", "Other"),
        ("", "Other"),
    ],
)
def test_user_agent_family(agent, family):
    assert user_agent_family(agent) == family


@pytest.mark.parametrize("language, progress, title, alt, retrying, saving", [
    ("en", "{current} of {total}", "Face {current} of {total}", "Face {current}",
     "Saving your answer… The connection is slow, trying again.", "Saving your answer…"),
    ("de", "{current} von {total}", "Gesicht {current} von {total}", "Gesicht {current}",
     "Ihre Antwort wird gespeichert… Die Verbindung ist langsam, neuer Versuch.", "Ihre Antwort wird gespeichert…"),
])
def test_the_trial_page_gives_trial_js_its_texts_in_the_study_language(client, language, progress, title, alt,
                                                                       retrying, saving):
    """trial.js swaps the next face in without a page load: it fills these translated patterns (the same messages
    as the page's own progress label, title and alt text) and posts the vote to the JSON API."""
    study = make_study(n_images=3, status="live", language=language)
    join(client, study)
    page = client.get(url("trial", study)).content.decode()
    attributes = dict(re.findall(r'data-([a-z-]+)="([^"]*)"', page))
    assert (attributes["text-progress"], attributes["text-title"], attributes["text-alt"]) == (progress, title, alt)
    assert attributes["msg-retrying"] == retrying  # shown while a vote is sent again (a server restarting)
    assert attributes["msg-saving"] == saving  # shown while a vote has had no answer for a few seconds
    assert attributes["vote-url"] == reverse("study:api-participant-vote", args=[study.slug])
    assert attributes["done-url"] == url("done", study)
    label = re.search(r'id="progress-label"[^>]*>([^<]+)<', page).group(1)
    assert label == progress.format(current=1, total=3)
