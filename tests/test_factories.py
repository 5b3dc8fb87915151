import pytest

from tests.factories import PredictionFactory, StimulusFactory, VoteFactory

pytestmark = pytest.mark.django_db


def test_stimulus_factory_stores_content_addressed_image():
    stimulus = StimulusFactory()
    assert stimulus.image.name.startswith(f"stimuli/{stimulus.study_id}/{stimulus.sha256[:2]}/")
    assert (stimulus.width, stimulus.height) == (16, 16)


def test_vote_and_prediction_factories_build_related_rows():
    assert VoteFactory().stimulus.study.label_set.labels[0] == "Surprise"
    assert len(PredictionFactory().distribution) == 7
