"""Fixtures shared by the study tests of several layers."""
from pathlib import Path

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


@pytest.fixture
def filesystem_broker(tmp_path):
    """The embedded default's broker, in a folder of this test's, with no worker reading it."""
    from webapp.celery import app

    saved = app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_always_eager
    folders = {key: str(tmp_path / key) for key in ("data_folder_in", "processed_folder", "control_folder")}
    for folder in folders.values():
        Path(folder).mkdir()
    app.conf.broker_url, app.conf.task_always_eager = "filesystem://", False
    app.conf.broker_transport_options = {**folders, "data_folder_out": folders["data_folder_in"],
                                         "store_processed": False}
    yield Path(folders["data_folder_in"])
    app.conf.broker_url, app.conf.broker_transport_options, app.conf.task_always_eager = saved
