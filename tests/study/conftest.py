"""Fixtures shared by the study tests of several layers."""
import pytest

from study.services.label_sets import label_set_create
from tests.factories import UserFactory


@pytest.fixture
def creator():
    """A researcher who makes label sets."""
    return UserFactory()


@pytest.fixture
def mine(creator):
    """A custom label set of `creator`: three emotions and one non-emotion answer."""
    return label_set_create(name="Mine", labels=["Joy", "Anger", "Calm"], non_emotion_labels=["Unsure"],
                            created_by=creator)
