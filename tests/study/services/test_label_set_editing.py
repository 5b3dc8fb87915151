"""Editing label sets: rename, reorder, re-key, mark non-emotion answers; answers locked once a study using the
set is launched or holds data (keys and the set's name may still change); only the creator or a superuser."""
import pytest

from study.errors import InvalidInput, PermissionDenied, SettingLocked
from study.models import LabelSet, Study
from study.selectors.label_sets import label_set_lock_reason
from study.services.label_sets import label_set_keys, label_set_lines, label_set_update
from tests.factories import ModelVersionFactory, PredictionFactory, StimulusFactory, StudyFactory, UserFactory, VoteFactory

pytestmark = pytest.mark.django_db


def update(label_set, by, **changes):
    values = {"name": label_set.name, "labels": label_set.labels, "non_emotion_labels": label_set.non_emotion_labels,
              "keys": label_set.keys, **changes}
    return label_set_update(label_set=label_set, by=by, **values)


def test_unused_set_may_be_renamed_reordered_rekeyed_and_marked_non_emotion(mine, creator):
    changed = update(mine, creator, name="Mine v2", labels=["Calm", "Happiness"], non_emotion_labels=["Unsure", "Anger"],
                     keys=["c", "h", "u", "x"])
    changed.refresh_from_db()
    assert changed.name == "Mine v2" and changed.answers == ["Calm", "Happiness", "Unsure", "Anger"]
    assert changed.non_emotion_labels == ["Unsure", "Anger"] and label_set_keys(changed) == ["c", "h", "u", "x"]


def test_a_draft_without_data_does_not_lock_the_set(mine, creator):
    StudyFactory(label_set=mine, status=Study.Status.DRAFT)
    StimulusFactory(study=Study.objects.get(label_set=mine))  # an image without ground truth
    assert label_set_lock_reason(label_set=mine) == ""
    assert update(mine, creator, labels=["Anger", "Joy", "Calm"]).labels == ["Anger", "Joy", "Calm"]


@pytest.mark.parametrize("make_data", [
    lambda study: Study.objects.filter(pk=study.pk).update(status=Study.Status.LIVE),
    lambda study: Study.objects.filter(pk=study.pk).update(status=Study.Status.CLOSED),
    lambda study: VoteFactory(stimulus=StimulusFactory(study=study), label="Joy",
                              participant__study=study),
    lambda study: PredictionFactory(stimulus=StimulusFactory(study=study), model_version=ModelVersionFactory(),
                                    distribution=[0.5, 0.3, 0.2]),
    lambda study: StimulusFactory(study=study, ground_truth="Calm"),
], ids=["live", "closed", "votes", "predictions", "ground-truth"])
def test_launched_or_data_holding_study_locks_the_answers_but_not_the_keys(mine, creator, make_data):
    study = StudyFactory(label_set=mine, status=Study.Status.DRAFT, title="Pilot")
    make_data(study)
    reason = label_set_lock_reason(label_set=mine)
    assert "“Pilot”" in reason and "locked" in reason
    for changes in ({"labels": ["Happy", "Anger", "Calm"]},  # rename
                    {"labels": ["Anger", "Joy", "Calm"]},  # reorder
                    {"labels": ["Joy", "Anger"]},  # fewer answers
                    {"labels": ["Joy", "Anger"], "non_emotion_labels": ["Calm", "Unsure"]},  # kind changed
                    {"non_emotion_labels": ["Unsure", "Not a face"]}):  # more answers
        with pytest.raises(SettingLocked, match="names, order and number are locked"):
            update(mine, creator, **changes)
    kept = LabelSet.objects.get(pk=mine.pk)
    assert kept.answers == ["Joy", "Anger", "Calm", "Unsure"]
    rekeyed = update(kept, creator, name="Mine (pilot)", keys=["j", "a", "c", "u"])
    assert label_set_keys(rekeyed) == ["j", "a", "c", "u"] and rekeyed.name == "Mine (pilot)"


def test_only_the_creator_or_a_superuser_may_edit(mine):
    with pytest.raises(PermissionDenied, match="creator"):
        update(mine, UserFactory(), keys=["q", "w", "e", "r"])
    seeded = LabelSet.objects.get(name="RAF-DB basic-7")
    with pytest.raises(PermissionDenied):
        update(seeded, UserFactory(), keys=[])
    admin = UserFactory(is_superuser=True)
    assert update(mine, admin, name="Admin's").name == "Admin's"


@pytest.mark.parametrize("changes, message", [
    ({"name": "RAF-DB basic-7"}, "already exists"),
    ({"name": " "}, "name"),
    ({"labels": ["Joy"]}, "at least two"),
    ({"labels": ["Joy", "joy"]}, "appears twice"),
    ({"keys": ["j", "j", "c", "u"]}, "more than one answer"),
])
def test_bad_edits_are_refused_and_change_nothing(mine, creator, changes, message):
    with pytest.raises(InvalidInput, match=message):
        update(mine, creator, **changes)
    assert LabelSet.objects.get(pk=mine.pk).answers == ["Joy", "Anger", "Calm", "Unsure"]


def test_keeping_its_own_name_is_not_a_clash(mine, creator):
    assert update(mine, creator, name="mine").name == "mine"


def test_lines_round_trip_the_answers_and_keys(mine, creator):
    assert label_set_lines(mine) == ("Joy\nAnger\nCalm", "Unsure")
    keyed = update(mine, creator, keys=["j", "a", "c", "u"])
    assert label_set_lines(keyed) == ("Joy = j\nAnger = a\nCalm = c", "Unsure = u")
