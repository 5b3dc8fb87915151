"""REST API: ownership on every endpoint, pagination, the participant vote endpoint, and a schemathesis
run against the OpenAPI schema that must find no server error."""
import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from study.models import Vote
from study.services.assignments import assignment_allocate
from tests.factories import ParticipantFactory, StimulusFactory, StudyFactory, UserFactory
from tests.study.compare_data import build_study

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client():
    user = UserFactory()
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=user).key}")
    return user, client


def test_researcher_reads_only_their_own_studies(owner_client):
    user, client = owner_client
    mine, _ = build_study(images=3, voters=2, owner=user)
    theirs, _ = build_study(images=1, voters=1)
    assert [s["slug"] for s in client.get("/api/studies/").json()] == [mine.slug]
    for suffix in ("", "stimuli/", "votes/", "predictions/", "metrics/"):
        assert client.get(f"/api/studies/{mine.slug}/{suffix}").status_code == 200
        assert client.get(f"/api/studies/{theirs.slug}/{suffix}").status_code == 404
    assert APIClient().get("/api/studies/").status_code in (401, 403)


def test_votes_use_cursor_pagination_and_metrics_include_the_ceiling(owner_client):
    user, client = owner_client
    study, models = build_study(images=4, voters=3, owner=user)
    page = client.get(f"/api/studies/{study.slug}/votes/").json()
    assert len(page["results"]) == 12 and "next" in page and "cursor" not in str(page["previous"] or "")
    metrics = client.get(f"/api/studies/{study.slug}/metrics/").json()
    names = [row["name"] for row in metrics["summaries"]]
    assert models[0].name in names and names[-1] == "Human split-half ceiling"


def test_participant_vote_endpoint_records_once_and_rejects_bad_input():
    study = StudyFactory(images_per_participant=2)
    StimulusFactory.create_batch(3, study=study)
    participant = ParticipantFactory(study=study)
    assignment_allocate(participant=participant)
    stimulus = participant.assignments.first().stimulus
    client = APIClient(enforce_csrf_checks=False)
    client.cookies[f"emostudy_participant_{study.pk}"] = participant.token
    body = {"stimulus": str(stimulus.public_id), "label": "Happiness", "response_ms": 900}
    assert client.post(f"/api/s/{study.slug}/votes/", body, format="json").status_code == 201
    assert client.post(f"/api/s/{study.slug}/votes/", body, format="json").status_code == 201  # idempotent
    assert Vote.objects.filter(participant=participant).count() == 1
    bad_label = client.post(f"/api/s/{study.slug}/votes/", {**body, "label": "Bored"}, format="json")
    assert bad_label.status_code == 400
    other = StimulusFactory(study=study)
    not_assigned = client.post(f"/api/s/{study.slug}/votes/", {**body, "stimulus": str(other.public_id)}, format="json")
    assert not_assigned.status_code == 400
    assert APIClient().post(f"/api/s/{study.slug}/votes/", body, format="json").status_code == 403


def test_participant_trial_endpoint_walks_through_the_trials_with_the_vote_endpoint():
    study = StudyFactory(images_per_participant=2)
    StimulusFactory.create_batch(3, study=study)
    participant = ParticipantFactory(study=study)
    assignment_allocate(participant=participant)
    order = list(participant.assignments.order_by("position").values_list("stimulus__public_id", flat=True))
    client = APIClient()
    client.cookies[f"emostudy_participant_{study.pk}"] = participant.token
    trial = client.get(f"/api/s/{study.slug}/trial/").json()
    assert (trial["answered"], trial["total"], trial["done"]) == (0, len(order), False)
    assert trial["current"]["stimulus"] == str(order[0]) and trial["next"]["stimulus"] == str(order[1])
    assert client.get(trial["current"]["image_url"]).status_code == 200  # the participant may load it
    assert trial["labels"] and set(trial["labels"]) == set(study.label_set.labels)
    for stimulus in order:
        body = {"stimulus": str(stimulus), "label": trial["labels"][0], "response_ms": 800}
        assert client.post(f"/api/s/{study.slug}/votes/", body, format="json").status_code == 201
        trial = client.get(f"/api/s/{study.slug}/trial/").json()
    assert trial["done"] and trial["current"] is None and trial["answered"] == len(order)
    assert APIClient().get(f"/api/s/{study.slug}/trial/").status_code == 403


def test_participant_trial_endpoint_says_when_the_study_is_not_open():
    study = StudyFactory(images_per_participant=2)
    StimulusFactory.create_batch(2, study=study)
    participant = ParticipantFactory(study=study)
    assignment_allocate(participant=participant)
    study.status = "paused"
    study.finish_when_paused = False  # by default a paused study lets those who started finish
    study.save()
    client = APIClient()
    client.cookies[f"emostudy_participant_{study.pk}"] = participant.token
    response = client.get(f"/api/s/{study.slug}/trial/")
    assert response.status_code == 409 and "detail" in response.json()
    study.finish_when_paused = True
    study.save()
    assert client.get(f"/api/s/{study.slug}/trial/").status_code == 200


def test_schema_and_offline_swagger_ui_are_served(client):
    assert client.get("/api/schema/").status_code == 200
    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and b"cdn" not in docs.content.lower()
    root = client.get("/api/")
    assert root.status_code == 302 and root["Location"] == "/api/docs/"
    schema = client.get("/api/schema/?format=json").json()
    tags = {tag for operation in schema["paths"]["/api/s/{slug}/votes/"].values() for tag in operation["tags"]}
    assert tags == {"participants"}  # not "s", the first path segment


def test_schemathesis_finds_no_server_error(owner_client):
    """Every operation of the served schema, fuzzed in-process against the WSGI app: with random path
    parameters and again with the researcher's real study, so the query parameters reach real data."""
    import schemathesis

    from webapp.wsgi import application

    user, _ = owner_client
    study, _ = build_study(images=3, voters=3, owner=user)
    token = Token.objects.get(user=user).key
    failures = []
    # Like Django's test client: keep the test's database connection (and its transaction) across requests,
    # the schema's own request included.
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        schema = schemathesis.openapi.from_wsgi("/api/schema/", application)
        operations = _run_operations(schema, token, study.slug, failures)
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    assert operations >= 9 and failures == []


def _run_operations(schema, token, slug, failures) -> int:
    import hypothesis
    from hypothesis import HealthCheck
    from schemathesis.checks import not_a_server_error
    from schemathesis.core.failures import FailureGroup
    from schemathesis.specs.openapi.checks import response_schema_conformance

    operations = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @hypothesis.settings(max_examples=10, deadline=None, database=None, derandomize=True,
                             suppress_health_check=list(HealthCheck))
        @hypothesis.given(case=operation.as_strategy())
        def check(case):
            variants = [dict(case.path_parameters or {})]
            if "slug" in variants[0]:
                variants.append({**variants[0], "slug": slug})
            for path_parameters in variants:
                case.path_parameters = path_parameters
                response = case.call(headers={"Authorization": f"Token {token}"})
                try:
                    case.validate_response(response, checks=[not_a_server_error, response_schema_conformance])
                except (AssertionError, FailureGroup) as error:  # schemathesis raises a group of check failures
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code}: {error}"[:500])

        check()
    return operations
