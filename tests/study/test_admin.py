"""Django admin: every changelist answers 200 for a superuser with a query count that does not grow with rows."""
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from study.models import Assignment, Participant, PredictionJob, Study
from tests.factories import (
    ModelVersionFactory,
    ParticipantFactory,
    PredictionFactory,
    StimulusFactory,
    StudyFactory,
    UserFactory,
    VoteFactory,
)

pytestmark = pytest.mark.django_db


MODELS = ["labelset", "study", "stimulus", "participant", "assignment", "vote", "modelversion", "predictionjob",
          "prediction"]


@pytest.fixture
def admin_client(client):
    user = UserFactory(username="boss", is_superuser=True, is_staff=True)
    client.force_login(user)
    return client


def add_rows(n: int) -> None:
    """n more rows of every model, spread over studies, stimuli, participants and models."""
    owner = UserFactory()
    for _ in range(n):
        study = StudyFactory(owner=owner)
        stimulus = StimulusFactory(study=study)
        participant = ParticipantFactory(study=study)
        Assignment.objects.create(participant=participant, stimulus=stimulus, position=0)
        VoteFactory(participant=participant, stimulus=stimulus)
        model_version = ModelVersionFactory()
        PredictionFactory(stimulus=stimulus, model_version=model_version)
        PredictionJob.objects.create(study=study, model_version=model_version, total=1)


def changelist_queries(client, model: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = client.get(reverse(f"admin:study_{model}_changelist"))
    assert response.status_code == 200, (model, response.status_code)
    return len(queries)


@pytest.mark.parametrize("model", MODELS)
def test_changelist_is_200_with_a_bounded_number_of_queries(admin_client, model, django_assert_max_num_queries):
    add_rows(2)
    few = changelist_queries(admin_client, model)
    add_rows(6)
    with django_assert_max_num_queries(15):
        many = changelist_queries(admin_client, model)
    assert many == few, f"{model}: {few} queries for 2 rows but {many} for 8 (N+1)"


@pytest.mark.parametrize("model", MODELS)
def test_change_page_is_200(admin_client, model):
    add_rows(1)
    from django.apps import apps

    obj = apps.get_model("study", model).objects.first()
    response = admin_client.get(reverse(f"admin:study_{model}_change", args=[obj.pk]))
    assert response.status_code == 200


def test_stimulus_list_shows_thumbnail_and_linked_vote_count(admin_client):
    stimulus = StimulusFactory()
    for _ in range(3):
        VoteFactory(stimulus=stimulus, participant=ParticipantFactory(study=stimulus.study))
    response = admin_client.get(reverse("admin:study_stimulus_changelist"))
    html = response.content.decode()
    image_url = reverse("study:researcher-stimulus-image", args=[stimulus.study.slug, stimulus.public_id])
    assert f'src="{image_url}"' in html
    assert f'href="{reverse("admin:study_vote_changelist")}?stimulus={stimulus.pk}">3</a>' in html
    assert admin_client.get(image_url).status_code == 200


def test_vote_filters_by_stimulus_participant_and_label(admin_client):
    study = StudyFactory()
    a, b = StimulusFactory(study=study), StimulusFactory(study=study)
    alice, bob = ParticipantFactory(study=study), ParticipantFactory(study=study)
    VoteFactory(participant=alice, stimulus=a, label="Fear")
    VoteFactory(participant=bob, stimulus=a, label="Anger")
    VoteFactory(participant=bob, stimulus=b, label="Anger")
    url = reverse("admin:study_vote_changelist")
    assert admin_client.get(url, {"stimulus": a.pk}).context["cl"].result_count == 2
    assert admin_client.get(url, {"stimulus": b.original_name}).context["cl"].result_count == 1
    assert admin_client.get(url, {"participant": bob.pk}).context["cl"].result_count == 2
    assert admin_client.get(url, {"participant": str(alice.public_id)}).context["cl"].result_count == 1
    assert admin_client.get(url, {"participant": "not-a-uuid"}).context["cl"].result_count == 0
    assert admin_client.get(url, {"label": "Anger"}).context["cl"].result_count == 2
    combined = admin_client.get(url, {"label": "Anger", "participant": bob.pk})
    assert combined.context["cl"].result_count == 2
    assert 'name="label" value="Anger"' in combined.content.decode()  # the text filters keep the other filters


def test_participant_list_filters_excluded_and_actions_toggle_it(admin_client):
    study = StudyFactory()
    kept, dropped = ParticipantFactory(study=study), ParticipantFactory(study=study, excluded=True)
    url = reverse("admin:study_participant_changelist")
    assert admin_client.get(url, {"excluded__exact": "1"}).context["cl"].result_count == 1
    response = admin_client.post(url, {"action": "mark_excluded", "_selected_action": [kept.pk]})
    assert response.status_code == 302
    kept.refresh_from_db()
    assert kept.excluded and kept.exclusion_reason == "Excluded by a researcher."
    admin_client.post(url, {"action": "mark_included", "_selected_action": [kept.pk, dropped.pk]})
    assert not Participant.objects.filter(excluded=True).exists()
    assert set(Participant.objects.values_list("exclusion_reason", flat=True)) == {""}


def test_participant_token_is_never_shown(admin_client):
    participant = ParticipantFactory(token="very-secret-cookie-token")
    response = admin_client.get(reverse("admin:study_participant_change", args=[participant.pk]))
    assert "very-secret-cookie-token" not in response.content.decode()


def test_study_actions_follow_the_status_rules(admin_client):
    empty = StudyFactory(status="draft")
    ready = StudyFactory(status="draft")
    StimulusFactory(study=ready)
    url = reverse("admin:study_study_changelist")
    response = admin_client.post(url, {"action": "launch", "_selected_action": [empty.pk, ready.pk]}, follow=True)
    messages = [str(m) for m in response.context["messages"]]
    assert any("Upload at least one image" in m for m in messages)
    empty.refresh_from_db(), ready.refresh_from_db()
    assert (empty.status, ready.status) == ("draft", "live")


def test_status_is_read_only_on_the_study_change_form(admin_client):
    study = StudyFactory(status="draft")
    response = admin_client.get(reverse("admin:study_study_change", args=[study.pk]))
    assert 'name="status"' not in response.content.decode()
    assert Study.objects.get(pk=study.pk).status == "draft"


def test_stimuli_cannot_be_added_by_hand(admin_client):
    assert admin_client.get(reverse("admin:study_stimulus_add")).status_code == 403


def test_participants_can_be_found_by_their_recruiting_platform_id(admin_client):
    wanted = ParticipantFactory(external_ids={"PROLIFIC_PID": "5f1e2d3c4b5a"})
    ParticipantFactory(external_ids={"PROLIFIC_PID": "aaaaaaaaaaaa"})
    response = admin_client.get(reverse("admin:study_participant_changelist"), {"q": "5f1e2d3c"})
    assert [p.pk for p in response.context["cl"].result_list] == [wanted.pk]
