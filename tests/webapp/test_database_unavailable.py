"""A database that cannot answer for a moment (bench/RESULTS.md: PostgreSQL restarted mid-load answered 500s)
costs a participant a 503 with Retry-After, which the page or script retries; nothing is written."""
import json

import pytest
from django.db import OperationalError

from study.models import Assignment, Participant, Vote
from tests.factories import StimulusFactory, StudyFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def started(client):
    study = StudyFactory(status="live", images_per_participant=2, gold_rate=0)
    StimulusFactory.create_batch(3, study=study)
    client.post(f"/s/{study.slug}/consent/", {"consent": "agree"})
    client.post(f"/s/{study.slug}/start/")
    first = Assignment.objects.filter(participant=Participant.objects.get(study=study)).order_by("position")[0]
    return study, first.stimulus


def _database_down(*args, **kwargs):
    raise OperationalError("terminating connection due to administrator command")


def test_a_vote_while_the_database_restarts_is_a_503_json_to_retry(client, started, monkeypatch):
    study, stimulus = started
    body = json.dumps({"stimulus": str(stimulus.public_id), "label": "Fear", "response_ms": 700})
    monkeypatch.setattr("study.api.participant.vote_submit", _database_down)  # the raw-SQL vote
    response = client.post(f"/api/s/{study.slug}/votes/", body, content_type="application/json")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert response.json()["code"] == "database_unavailable"
    assert not Vote.objects.exists()
    monkeypatch.undo()  # the database is back: the same vote goes through, once
    assert client.post(f"/api/s/{study.slug}/votes/", body, content_type="application/json").status_code == 201
    assert Vote.objects.count() == 1


def test_a_trial_page_while_the_database_restarts_is_a_503_page(client, started, monkeypatch):
    study, _ = started
    monkeypatch.setattr("study.views.participant.participant_for_page", _database_down)
    response = client.get(f"/s/{study.slug}/trial/")
    assert response.status_code == 503 and response["Retry-After"] == "5"
    assert b"Try again in a moment" in response.content


def test_other_errors_are_not_disguised(client, started, monkeypatch):
    study, _ = started

    def broken(*args, **kwargs):
        raise ValueError("a bug")

    monkeypatch.setattr("study.views.participant.participant_for_page", broken)
    with pytest.raises(ValueError):
        client.get(f"/s/{study.slug}/trial/")


def _require_health_checks():
    """PostgreSQL with the production's health checks, and the connection the participant's join kept."""
    from django.db import connection

    from tests.services import require_postgres

    require_postgres()
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] and connection.health_check_enabled
    assert connection.connection is not None


def _kill_kept_connection():
    """What a database restart does to the connection Django keeps between requests, unknown to Django."""
    from django.db import connection

    with connection.copy().cursor() as other:
        other.execute("SELECT pg_terminate_backend(%s)", [connection.connection.info.backend_pid])


def _vote(client, study, stimulus):
    return client.post(f"/api/s/{study.slug}/votes/", json.dumps(
        {"stimulus": str(stimulus.public_id), "label": "Fear", "response_ms": 700}),
        content_type="application/json")


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("hot_path", [True, False])
def test_a_request_on_a_connection_that_died_with_a_database_restart_goes_through(client, started, hot_path):
    """The database restarted between two requests: the kept connection is dead. The next request reconnects: the
    vote (the hot path, study.rawsql.on_kept_connection: its first statement fails, it runs again on a new
    connection) and an ORM page (Django's CONN_HEALTH_CHECKS, the production setting: SELECT 1 first); only the
    requests in flight during the restart meet the 503 (bench/RESULTS.md, restart-postgres). Before the fix the
    setting was misspelt (CONN_HEALTH_CHECK) and production had no check: the trial page answered 503 here."""
    from django.db import close_old_connections, connection

    study, stimulus = started
    _require_health_checks()
    _kill_kept_connection()
    close_old_connections()  # what the WSGI handler does at each request's start (the test client does not)
    try:
        response = _vote(client, study, stimulus) if hot_path else client.get(f"/s/{study.slug}/trial/")
    finally:
        connection.close()  # whatever happened, the test database's teardown gets a live connection
    assert response.status_code == (201 if hot_path else 200), response.content
    assert Vote.objects.count() == (1 if hot_path else 0)


@pytest.mark.integration
@pytest.mark.django_db(transaction=True)
def test_the_vote_on_a_live_kept_connection_sends_no_health_check(client, started, monkeypatch):
    """Django's check is a SELECT 1 round trip before each request's first query; the vote's own first statement
    is its check, and a live connection is not checked again."""
    from django.db import close_old_connections, connection

    study, stimulus = started
    _require_health_checks()
    checks = []
    real_is_usable = connection.is_usable
    monkeypatch.setattr(connection, "is_usable", lambda: checks.append(1) or real_is_usable())
    close_old_connections()
    assert _vote(client, study, stimulus).status_code == 201
    assert checks == []
    close_old_connections()
    assert client.get(f"/s/{study.slug}/trial/").status_code == 200  # an ORM page is checked as before
    assert checks == [1]
