"""The vote path's cost in SQL round trips: a vote at most 6 queries, a trial page at most 3, the JSON trial state
2 (BEGIN/COMMIT
count: inside the test's transaction they are the SAVEPOINT/RELEASE pair that pytest-django counts)."""
import json

import pytest

from study.models import Assignment, Participant, Vote
from tests.factories import StimulusFactory, StudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(client):
    study = StudyFactory(status="live", images_per_participant=4, gold_rate=0.25, votes_per_image=5)
    StimulusFactory.create_batch(8, study=study)
    StimulusFactory(study=study, is_gold=True, ground_truth="Happiness")
    client.post(f"/s/{study.slug}/consent/", {"consent": "agree"})
    client.post(f"/s/{study.slug}/start/")
    participant = Participant.objects.get(study=study)
    return study, participant


def _sequence(participant):
    return list(Assignment.objects.filter(participant=participant).select_related("stimulus").order_by("position"))


def _vote_json(client, study, assignment, label="Fear"):
    return client.post(f"/s/{study.slug}/trial/", json.dumps(
        {"stimulus": str(assignment.stimulus.public_id), "label": label, "response_ms": 800}),
        content_type="application/json", HTTP_ACCEPT="application/json")


def test_trial_page_costs_at_most_3_queries(client, started, django_assert_max_num_queries):
    study, participant = started
    first, second = _sequence(participant)[:2]
    with django_assert_max_num_queries(3):
        response = client.get(f"/s/{study.slug}/trial/")
    page = response.content.decode()
    assert response.status_code == 200
    assert str(first.stimulus.public_id) in page and str(second.stimulus.public_id) in page  # next preloaded


def test_api_trial_state_costs_2_queries_like_the_page(client, started, django_assert_max_num_queries):
    study, participant = started
    first, second = _sequence(participant)[:2]
    with django_assert_max_num_queries(2):  # was 5: study, participant, counts, upcoming, the study again
        body = client.get(f"/api/s/{study.slug}/trial/").json()
    assert (body["current"]["stimulus"], body["next"]["stimulus"]) == (str(first.stimulus.public_id),
                                                                     str(second.stimulus.public_id))
    assert (body["answered"], body["total"], body["done"]) == (0, 4, False)


def test_every_vote_costs_at_most_6_queries_and_the_last_one_finishes(client, started,
                                                                      django_assert_max_num_queries):
    study, participant = started
    sequence = _sequence(participant)
    for assignment in sequence[:-1]:  # regular and gold items alike
        with django_assert_max_num_queries(6):
            response = _vote_json(client, study, assignment)
        assert response.status_code == 200, response.content
    body = _vote_json(client, study, sequence[-1]).json()
    assert body["progress"] == {"answered": 4, "total": 4} and body["next_url"].endswith("/done/")
    participant.refresh_from_db()
    assert participant.finished_at is not None and participant.gold_answered == 1
    assert Vote.objects.filter(participant=participant).count() == 4


def test_form_vote_without_javascript_is_as_cheap(client, started, django_assert_max_num_queries):
    study, participant = started
    first = _sequence(participant)[0]
    page = client.get(f"/s/{study.slug}/trial/").content.decode()
    shown = page.split('name="shown" value="')[1].split('"')[0]
    with django_assert_max_num_queries(6):
        response = client.post(f"/s/{study.slug}/trial/",
                               {"stimulus": str(first.stimulus.public_id), "label": "Fear", "shown": shown})
    assert response.status_code == 302 and response["Location"].endswith("/trial/")


def test_api_vote_costs_at_most_6_queries(client, started, django_assert_max_num_queries):
    study, participant = started
    first = _sequence(participant)[0]
    with django_assert_max_num_queries(6):
        response = client.post(f"/api/s/{study.slug}/votes/", json.dumps(
            {"stimulus": str(first.stimulus.public_id), "label": "Fear", "response_ms": 700}),
            content_type="application/json")
    assert response.status_code == 201 and response.json()["label"] == "Fear"


def _api_vote(client, study, assignment):
    return client.post(f"/api/s/{study.slug}/votes/", json.dumps(
        {"stimulus": str(assignment.stimulus.public_id), "label": "Fear", "response_ms": 700}),
        content_type="application/json")


def test_api_vote_answer_names_the_next_images_within_6_queries(client, started, django_assert_max_num_queries):
    study, participant = started
    sequence = _sequence(participant)
    keys = [str(a.stimulus.public_id) for a in sequence]
    for i, assignment in enumerate(sequence[:-1]):  # regular and gold items alike: no GET of the trial needed
        with django_assert_max_num_queries(6):
            response = _api_vote(client, study, assignment)
        trial = response.json()["trial"]
        assert response.status_code == 201
        assert (trial["answered"], trial["total"], trial["done"]) == (i + 1, 4, False)
        assert trial["current"]["stimulus"] == keys[i + 1]
        assert trial["current"]["image_url"].endswith(f"/img/{keys[i + 1]}/")
        assert (trial["next"] or {}).get("stimulus") == (keys[i + 2] if i + 2 < len(keys) else None)
    again = _api_vote(client, study, sequence[1]).json()["trial"]  # a repeat answers the same state
    assert (again["answered"], again["current"]["stimulus"]) == (3, keys[3])
    last = _api_vote(client, study, sequence[-1]).json()["trial"]
    assert (last["answered"], last["done"], last["current"], last["next"]) == (4, True, None, None)


def test_participants_never_cost_a_session_write(client, started):
    """Participants are known by their study cookie: no django_session row, no session cookie, on any step."""
    from django.contrib.sessions.models import Session

    study, participant = started
    first, second = _sequence(participant)[:2]
    responses = [client.get(f"/s/{study.slug}/trial/"), _vote_json(client, study, first),
                 client.get(f"/api/s/{study.slug}/trial/"), _api_vote(client, study, second)]
    assert all(r.status_code in (200, 201) for r in responses)
    assert not any("sessionid" in r.cookies for r in responses)
    assert not Session.objects.exists()


def test_a_repeated_vote_is_idempotent_on_the_fast_path(client, started):
    study, participant = started
    first = _sequence(participant)[0]
    one = _vote_json(client, study, first, "Fear").json()
    two = _vote_json(client, study, first, "Anger").json()
    assert one["vote"] == two["vote"] and two["vote"]["label"] == "Fear"
    assert Vote.objects.filter(participant=participant).count() == 1


def test_errors_still_come_from_the_general_path(client, started):
    study, participant = started
    first = _sequence(participant)[0]
    assert _vote_json(client, study, first, "Nonsense").status_code == 400
    other = StimulusFactory(study=study)
    assert _vote_json(client, study, Assignment(stimulus=other)).status_code == 400
    assert not Vote.objects.exists()
