"""Edit (what may change after launch), clone, delete a draft, and launch warnings."""
import pytest
from django.core.files.storage import default_storage

from study.errors import InvalidStatusChange, SettingLocked
from study.models import LabelSet, Participant, Stimulus, Study, Vote
from study.services.study_settings import (
    study_clone,
    study_delete_draft,
    study_launch_warnings,
    study_locked_fields,
    study_update,
)
from tests.factories import ParticipantFactory, StimulusFactory, StudyFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db


def other_label_set() -> LabelSet:
    return LabelSet.objects.get(name="AffectNet-8")


def test_draft_may_change_everything():
    study = StudyFactory(status=Study.Status.DRAFT)
    study = study_update(study=study, changes={"label_set": other_label_set(), "slug": "Renamed",
                                               "images_per_participant": 9, "title": "New"})
    assert (study.label_set.name, study.slug, study.images_per_participant, study.title) == \
        ("AffectNet-8", "renamed", 9, "New")


@pytest.mark.parametrize("status", [Study.Status.LIVE, Study.Status.PAUSED, Study.Status.CLOSED])
def test_label_set_and_slug_are_locked_after_launch(status):
    study = StudyFactory(status=status)
    for changes in ({"label_set": other_label_set()}, {"slug": "elsewhere"}):
        with pytest.raises(SettingLocked, match="cannot change once the study has been launched"):
            study_update(study=study, changes=changes)
    assert study_update(study=study, changes={"title": "Still editable", "gold_pass_threshold": 0.5}).title == \
        "Still editable"


def test_images_per_participant_is_locked_while_live_only():
    study = StudyFactory(status=Study.Status.LIVE, images_per_participant=5)
    with pytest.raises(SettingLocked, match="pause it first"):
        study_update(study=study, changes={"images_per_participant": 6})
    Study.objects.filter(pk=study.pk).update(status=Study.Status.PAUSED)
    assert study_update(study=Study.objects.get(pk=study.pk), changes={"images_per_participant": 6}) \
        .images_per_participant == 6
    assert "images_per_participant" not in study_locked_fields(study=Study.objects.get(pk=study.pk))


def test_votes_per_image_cannot_go_below_the_votes_an_image_has():
    study = StudyFactory(votes_per_image=5)
    stimulus = StimulusFactory(study=study)
    for _ in range(3):
        VoteFactory(stimulus=stimulus, participant=ParticipantFactory(study=study))
    VoteFactory(stimulus=stimulus, participant=ParticipantFactory(study=study, is_test=True, excluded=True))
    with pytest.raises(SettingLocked, match="cannot go below 3"):
        study_update(study=study, changes={"votes_per_image": 2})
    assert study_update(study=study, changes={"votes_per_image": 3}).votes_per_image == 3  # test votes do not count


def test_edit_page_shows_locked_fields_and_answers_409_with_the_reason(client):
    owner = UserFactory(is_staff=False)
    study = StudyFactory(owner=owner, status=Study.Status.LIVE, images_per_participant=5)
    client.force_login(owner)
    page = client.get(f"/studies/{study.slug}/edit/").content.decode()
    assert 'id="locked-note"' in page and "pause it first" in page
    data = {"title": "Renamed live", "votes_per_image": 3, "images_per_participant": 5, "gold_rate": 0,
            "gold_pass_threshold": 0.75, "consent_text": "c", "instructions_text": "i", "language": "de",
            "completion_code": "DONE1", "no_consent_code": "NOPE1", "screened_out_code": "OUT1",
            "fast_response_ms": 250, "finish_when_paused": "on", "url_parameters": "cohort"}
    response = client.post(f"/studies/{study.slug}/edit/", {**data, "images_per_participant": 7})
    study.refresh_from_db()
    # The disabled field keeps its value (a browser never sends it), so the save goes through unchanged.
    assert response.status_code == 302 and study.images_per_participant == 5 and study.language == "de"
    assert (study.title, study.no_consent_code, study.url_parameters) == ("Renamed live", "NOPE1", ["cohort"])
    image = StimulusFactory(study=study)
    for _ in range(4):
        VoteFactory(stimulus=image, participant=ParticipantFactory(study=study))
    response = client.post(f"/studies/{study.slug}/edit/", {**data, "votes_per_image": 1})
    assert response.status_code == 409 and "cannot go below" in response.content.decode()


def test_clone_copies_settings_label_set_and_images_without_votes(client):
    owner, other = UserFactory(is_staff=False), UserFactory(is_staff=False)
    study = StudyFactory(owner=owner, label_set=other_label_set(), votes_per_image=7, gold_rate=0.2,
                         language="de", fast_response_ms=400)
    images = [StimulusFactory(study=study, ground_truth="Happiness", is_gold=True, valence=0.5),
              StimulusFactory(study=study)]
    VoteFactory(stimulus=images[1], participant=ParticipantFactory(study=study))
    clone = study_clone(study=study, owner=other, title="Copy", slug="copy-1")
    assert (clone.status, clone.owner, clone.label_set, clone.votes_per_image, clone.gold_rate, clone.language,
            clone.fast_response_ms) == ("draft", other, study.label_set, 7, 0.2, "de", 400)
    copies = list(Stimulus.objects.filter(study=clone).order_by("pk"))
    assert [(c.sha256, c.is_gold, c.ground_truth, c.valence) for c in copies] == \
        [(s.sha256, s.is_gold, s.ground_truth, s.valence) for s in images]
    pairs = zip(copies, images, strict=True)
    assert all(default_storage.exists(c.image.name) and c.image.name != s.image.name for c, s in pairs)
    assert not Vote.objects.filter(stimulus__study=clone).exists() and not clone.participants.exists()
    client.force_login(owner)
    response = client.post(f"/studies/{study.slug}/clone/", {"title": "Second copy", "slug": "copy-2"})
    assert response.status_code == 302 and response["Location"] == "/studies/copy-2/"
    assert client.post(f"/studies/{study.slug}/clone/", {"title": "x", "slug": "copy-2"}).status_code == 400


def test_only_a_draft_can_be_deleted_and_its_files_go(client, django_capture_on_commit_callbacks):
    owner = UserFactory(is_staff=False)
    live = StudyFactory(owner=owner, status=Study.Status.LIVE)
    with pytest.raises(InvalidStatusChange):
        study_delete_draft(study=live)
    client.force_login(owner)
    assert client.post(f"/studies/{live.slug}/delete/").status_code == 409
    draft = StudyFactory(owner=owner, status=Study.Status.DRAFT)
    name = StimulusFactory(study=draft).image.name
    confirm = client.get(f"/studies/{draft.slug}/delete/")
    assert confirm.status_code == 200 and b'id="confirm-delete"' in confirm.content
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post(f"/studies/{draft.slug}/delete/").status_code == 302
    assert not Study.objects.filter(pk=draft.pk).exists() and not default_storage.exists(name)
    assert Study.objects.filter(pk=live.pk).exists()


def test_launch_warns_when_gold_rate_is_set_but_there_are_no_gold_items(client):
    owner = UserFactory(is_staff=False)
    study = StudyFactory(owner=owner, status=Study.Status.DRAFT, gold_rate=0.1, images_per_participant=1)
    StimulusFactory(study=study)
    assert any("no gold items" in w for w in study_launch_warnings(study=study))
    client.force_login(owner)
    assert b'id="launch-warnings"' in client.get(f"/studies/{study.slug}/").content
    launched = client.post(f"/studies/{study.slug}/status/", {"status": "live"}, follow=True)
    assert b"no gold items" in launched.content and Study.objects.get(pk=study.pk).status == "live"
    StimulusFactory(study=study, is_gold=True, ground_truth="Happiness")
    assert study_launch_warnings(study=study) == []


def test_launch_warns_when_the_study_has_no_images_to_rate():
    study = StudyFactory(status=Study.Status.DRAFT, gold_rate=0)
    assert any("no images to rate" in w for w in study_launch_warnings(study=study))
    StimulusFactory(study=study, is_gold=True, ground_truth="Happiness")  # gold items alone are not enough
    assert any("no images to rate" in w for w in study_launch_warnings(study=study))
    StimulusFactory(study=study)
    assert not any("no images to rate" in w for w in study_launch_warnings(study=study))


def test_participant_model_counts_leave_out_test_participants():
    study = StudyFactory()
    ParticipantFactory(study=study, is_test=True, excluded=True)
    ParticipantFactory(study=study)
    from study.selectors.studies import study_dashboard

    assert study_dashboard(study=study).participants == 1 and Participant.objects.count() == 2
