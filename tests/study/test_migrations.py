"""Data migrations, run forwards on rows written by the schema before them."""
import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

pytestmark = pytest.mark.django_db(transaction=True)


def _migrate(targets: list[tuple[str, str]]):
    """Migrate the test database to `targets` -> the app registry of that state (historical models)."""
    executor = MigrationExecutor(connection)
    executor.migrate(targets)
    executor.loader.build_graph()
    return executor.loader.project_state(targets).apps


def _latest() -> list[tuple[str, str]]:
    return MigrationExecutor(connection).loader.graph.leaf_nodes()


def test_report_left_out_is_worked_out_for_batches_imported_before_it():
    old = _migrate([("study", "0017_upload_batch_restarts")])
    try:
        user = old.get_model("auth", "User").objects.create(username="owner")
        label_set = old.get_model("study", "LabelSet").objects.create(name="migration test", labels=["Happy", "Sad"])
        study = old.get_model("study", "Study").objects.create(title="s", slug="s", owner=user, label_set=label_set)
        batches = old.get_model("study", "UploadBatch").objects
        capped = batches.create(study=study, duplicates=7, rejected=2,
                                report=[[f"d{i}.png", "duplicate", "same file"] for i in range(5)]
                                + [["r0.png", "rejected", "not an image"], ["r1.png", "rejected", "not an image"]])
        complete = batches.create(study=study, duplicates=1, report=[["d.png", "duplicate", "same file"]])
        empty = batches.create(study=study)

        new = _migrate([("study", "0018_upload_batch_report_left_out")])
        left_out = dict(new.get_model("study", "UploadBatch").objects.values_list("pk", "report_left_out"))
        assert left_out == {capped.pk: {"duplicate": 2}, complete.pk: {}, empty.pk: {}}
    finally:
        _migrate(_latest())  # wherever the test stopped, leave every app at its newest schema for the tests after it
