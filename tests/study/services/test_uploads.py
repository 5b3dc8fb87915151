"""Uploads beyond a small size are stored, then imported by a worker with progress and a final report."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from study.jobs import (
    IMPORT_UPLOAD_BATCH,
    PREDICT_STIMULI,
    enqueue_prediction_job,
    enqueue_upload_batch,
    waiting_task_args,
)
from study.models import Stimulus, UploadBatch
from study.services import uploads
from study.services.stimuli import stimulus_import_file
from study.services.uploads import upload_batch_run, upload_batches_requeue_unfinished
from tests.factories import StudyFactory, UserFactory, png_bytes
from tests.files import make_zip

pytestmark = pytest.mark.django_db(transaction=True)  # on_commit enqueues, as in a real request


@pytest.fixture(autouse=True)
def eager_celery(settings):
    from webapp.celery import app

    settings.STIMULUS_INLINE_MAX_BYTES = 600
    app.conf.task_always_eager, before = True, app.conf.task_always_eager
    yield
    app.conf.task_always_eager = before


@pytest.fixture
def owner_client(client):
    owner = UserFactory()
    client.force_login(owner)
    return client, StudyFactory(owner=owner)


def _zip(n: int, broken: int = 0) -> bytes:
    members = {f"faces/face_{i:03d}.png": png_bytes(i) for i in range(n)}
    members.update({f"faces/broken_{i}.png": b"not an image" for i in range(broken)})
    members["faces/manifest.csv"] = "filename,label\nface_000.png,Fear\nmissing.png,Fear\n"
    return make_zip(members)


def test_a_big_zip_is_stored_then_imported_by_the_worker_with_a_report(owner_client, settings):
    client, study = owner_client
    upload = SimpleUploadedFile("faces.zip", _zip(60, broken=2), content_type="application/zip")
    response = client.post(f"/studies/{study.slug}/upload/", {"files": upload})
    batch = UploadBatch.objects.get(study=study)
    assert response.status_code == 302 and response["Location"].endswith(f"/uploads/{batch.pk}/")
    status = client.get(f"/studies/{study.slug}/uploads/{batch.pk}/status.json").json()
    assert status["finished"] and status["state"] == "done" and status["state_display"] == "Done"
    assert (status["done"], status["total"], status["imported"], status["rejected"]) == (62, 62, 60, 3)
    assert {row[0] for row in status["report"]} >= {"faces/broken_0.png", "faces/broken_1.png", "missing.png"}
    assert Stimulus.objects.filter(study=study).count() == 60
    assert Stimulus.objects.get(study=study, original_name__endswith="face_000.png").ground_truth == "Fear"
    assert not list((settings.MEDIA_ROOT / "uploads").glob("*"))  # the stored upload is removed once imported
    page = client.get(f"/studies/{study.slug}/uploads/{batch.pk}/").content.decode()
    assert "broken_0.png" in page and "Done" in page and "Upload of faces.zip" in page


def test_several_big_files_are_bundled_and_imported(owner_client):
    client, study = owner_client
    files = [SimpleUploadedFile(f"f{i}.png", png_bytes(100 + i, size=48), content_type="image/png")
             for i in range(6)]
    assert sum(f.size for f in files) > 600
    response = client.post(f"/studies/{study.slug}/upload/", {"files": files})
    assert response.status_code == 302 and "/uploads/" in response["Location"]
    assert UploadBatch.objects.get(study=study).imported == 6


def test_a_small_upload_is_still_imported_in_the_request(owner_client):
    client, study = owner_client
    small = SimpleUploadedFile("one.png", png_bytes(7), content_type="image/png")
    assert small.size < 600
    response = client.post(f"/studies/{study.slug}/upload/", {"files": small})
    assert response.status_code == 302 and "/uploads/" not in response["Location"]
    assert not UploadBatch.objects.exists() and Stimulus.objects.filter(study=study).count() == 1


def test_an_unreadable_stored_upload_fails_with_a_message(owner_client):
    client, study = owner_client
    response = client.post(f"/studies/{study.slug}/upload/",
                           {"files": SimpleUploadedFile("big.zip", b"PK\x03\x04" + b"x" * 5000)})
    batch = UploadBatch.objects.get(study=study)
    assert response.status_code == 302
    assert batch.state == "failed" and "zip" in batch.error


def test_other_researchers_cannot_see_an_upload(owner_client, client):
    owner_client_, study = owner_client
    owner_client_.post(f"/studies/{study.slug}/upload/", {"files": SimpleUploadedFile("faces.zip", _zip(40))})
    batch = UploadBatch.objects.get(study=study)
    client.force_login(UserFactory())
    assert client.get(f"/studies/{study.slug}/uploads/{batch.pk}/status.json").status_code == 404


def _stored_batch(client, study, monkeypatch, n: int = 30) -> UploadBatch:
    """A big upload stored by the view but whose queued message was lost (as the embedded broker loses it)."""
    with monkeypatch.context() as patched:
        patched.setattr(uploads, "enqueue_upload_batch", lambda batch_id: "lost")
        client.post(f"/studies/{study.slug}/upload/", {"files": SimpleUploadedFile("faces.zip", _zip(n))})
    return UploadBatch.objects.get(study=study)


def test_an_import_a_stopped_worker_left_half_done_starts_again_and_the_page_says_so(owner_client, monkeypatch):
    client, study = owner_client
    batch = _stored_batch(client, study, monkeypatch)
    for i in range(12):  # what the stopped worker had imported
        stimulus_import_file(study=study, name=f"faces/face_{i:03d}.png", data=png_bytes(i))
    UploadBatch.objects.filter(pk=batch.pk).update(state=UploadBatch.State.RUNNING, done=12, total=30, imported=12)
    finished = _stored_batch(client, StudyFactory(owner=study.owner), monkeypatch, n=3)
    UploadBatch.objects.filter(pk=finished.pk).update(state=UploadBatch.State.DONE)

    assert upload_batches_requeue_unfinished() == [batch.pk]  # eager Celery: the import runs here, as in a worker

    batch.refresh_from_db()
    assert (batch.state, batch.restarts, batch.done, batch.total) == ("done", 1, 30, 30)
    assert (batch.imported, batch.duplicates, batch.rejected) == (18, 12, 1)  # the manifest's missing.png
    assert Stimulus.objects.filter(study=study).count() == 30
    assert UploadBatch.objects.get(pk=finished.pk).restarts == 0
    page = client.get(f"/studies/{study.slug}/uploads/{batch.pk}/").content.decode()
    assert "A restart of EmoStudy interrupted this import" in page and "duplicates of" in page
    assert client.get(f"/studies/{study.slug}/uploads/{batch.pk}/status.json").json()["restarts"] == 1


def test_a_queued_import_whose_message_was_lost_is_queued_again_without_a_restart_note(owner_client, monkeypatch):
    client, study = owner_client
    batch = _stored_batch(client, study, monkeypatch, n=20)
    assert batch.state == "queued"
    assert upload_batches_requeue_unfinished() == [batch.pk]
    batch.refresh_from_db()
    assert (batch.state, batch.imported, batch.restarts) == ("done", 20, 0)
    assert "interrupted" not in client.get(f"/studies/{study.slug}/uploads/{batch.pk}/").content.decode()


def test_a_second_delivery_of_a_finished_import_changes_nothing(owner_client):
    client, study = owner_client
    client.post(f"/studies/{study.slug}/upload/", {"files": SimpleUploadedFile("faces.zip", _zip(20))})
    batch = UploadBatch.objects.get(study=study)
    before = (batch.state, batch.imported, batch.duplicates, batch.report, batch.restarts)
    upload_batch_run(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.state, batch.imported, batch.duplicates, batch.report, batch.restarts) == before


def test_a_run_that_finds_its_import_finished_by_another_run_leaves_that_result(owner_client, monkeypatch):
    """The same import running twice at once (a surviving message beside the one queued again): the run that
    ends second neither overwrites the first one's result nor marks it failed."""
    client, study = owner_client
    batch = _stored_batch(client, study, monkeypatch, n=20)
    real_import = uploads.stimuli_import_archive

    def import_while_another_run_finishes(**kwargs):
        result = real_import(**kwargs)
        UploadBatch.objects.filter(pk=batch.pk).update(state=UploadBatch.State.DONE, imported=20, report=[["x", "y", "z"]])
        return result

    monkeypatch.setattr(uploads, "stimuli_import_archive", import_while_another_run_finishes)
    uploads.upload_batch_run(batch_id=batch.pk)
    batch.refresh_from_db()
    assert (batch.state, batch.imported, batch.report) == ("done", 20, [["x", "y", "z"]])


def test_an_import_whose_message_still_waits_in_the_embedded_broker_is_not_queued_twice(owner_client, monkeypatch,
                                                                                        filesystem_broker):
    client, study = owner_client
    waiting = _stored_batch(client, study, monkeypatch, n=3)
    lost = _stored_batch(client, StudyFactory(owner=study.owner), monkeypatch, n=3)
    enqueue_upload_batch(waiting.pk)  # never fetched: still on disk after a stop
    enqueue_prediction_job(12345)
    assert waiting_task_args(IMPORT_UPLOAD_BATCH) == [[waiting.pk]]
    assert waiting_task_args(PREDICT_STIMULI) == [[12345]]
    (filesystem_broker / "garbage.msg").write_text("{not json")  # unreadable files are skipped, not fatal

    assert upload_batches_requeue_unfinished() == [lost.pk]
    assert sorted(waiting_task_args(IMPORT_UPLOAD_BATCH)) == sorted([[waiting.pk], [lost.pk]])


def test_the_report_keeps_rejections_that_come_after_more_duplicates_than_its_cap(owner_client, monkeypatch):
    """A restart turns every file imported before into a duplicate row; a later rejection must stay listed."""
    from study.views import researcher

    client, study = owner_client
    monkeypatch.setattr(uploads, "REPORT_LIMIT", 5)
    monkeypatch.setattr(researcher, "REPORT_LIMIT", 5)
    for i in range(8):
        stimulus_import_file(study=study, name=f"faces/face_{i:03d}.png", data=png_bytes(i))
    client.post(f"/studies/{study.slug}/upload/", {"files": SimpleUploadedFile("faces.zip", _zip(10, broken=2))})
    batch = UploadBatch.objects.get(study=study)
    assert (batch.duplicates, batch.rejected) == (8, 3)
    statuses = [row[1] for row in batch.report]
    assert statuses.count("duplicate") == 5 and statuses.count("rejected") == 3
    assert batch.report_left_out == {"duplicate": 3}
    status = client.get(f"/studies/{study.slug}/uploads/{batch.pk}/status.json").json()
    assert status["report_left_out"] == {"duplicate": 3}
    page = client.get(f"/studies/{study.slug}/uploads/{batch.pk}/").content.decode()
    note = " ".join(page.split("report-capped", 1)[1].split("</p>", 1)[0].split())
    assert "first 5 rows of each result; it left out 3 more duplicate rows." in note and "rejected" not in note


def test_the_report_page_says_rows_were_left_out_only_when_they_were(owner_client, monkeypatch):
    """Exactly as many files of a result as the cap: all of them are listed, so no "there were more" note."""
    from study.views import researcher

    client, study = owner_client
    monkeypatch.setattr(uploads, "REPORT_LIMIT", 3)
    monkeypatch.setattr(researcher, "REPORT_LIMIT", 3)
    client.post(f"/studies/{study.slug}/upload/", {"files": SimpleUploadedFile("faces.zip", _zip(4, broken=2))})
    batch = UploadBatch.objects.get(study=study)
    assert batch.rejected == 3 and len(batch.report) == 3 and batch.report_left_out == {}
    page = client.get(f"/studies/{study.slug}/uploads/{batch.pk}/").content.decode()
    assert "report-capped" not in page


def test_the_report_page_is_paged_filtered_by_result_and_downloadable(owner_client, monkeypatch):
    from study.views import researcher

    client, study = owner_client
    monkeypatch.setattr(researcher, "REPORT_ROWS_PER_PAGE", 4)
    for i in range(6):
        stimulus_import_file(study=study, name=f"faces/face_{i:03d}.png", data=png_bytes(i))
    members = {f"faces/face_{i:03d}.png": png_bytes(i) for i in range(12)}
    members["=HYPERLINK(1).png"] = b"not an image"
    members["faces/broken.png"] = b"not an image"
    client.post(f"/studies/{study.slug}/upload/", {"files": SimpleUploadedFile("faces.zip", make_zip(members))})
    batch = UploadBatch.objects.get(study=study)
    url = f"/studies/{study.slug}/uploads/{batch.pk}/"
    page = client.get(url).content.decode()
    assert "all (8)" in page and "duplicate (6)" in page and "rejected (2)" in page
    assert "Rows 1–4 of 8 (page 1 of 2)" in page and page.count("<tr><td>") == 4
    first_rows = page.split("<tbody>")[1].split("</tbody>")[0]
    assert first_rows.count("rejected") == 2  # the archive's last files, listed first: they need action
    second = client.get(url, {"page": 2}).content.decode()
    assert "Rows 5–8 of 8" in second and second.count("<tr><td>") == 4
    rejected = client.get(url, {"result": "rejected"}).content.decode()
    assert rejected.count("<tr><td>") == 2 and "face_000.png" not in rejected and "broken.png" in rejected
    assert "Rows" not in rejected  # one page: no pager
    assert client.get(url, {"result": "nonsense", "page": "x"}).status_code == 200  # bad filters show all

    response = client.get(f"{url}report.csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    assert "attachment" in response["Content-Disposition"]
    lines = response.content.decode().splitlines()
    assert lines[0] == "file,result,reason" and len(lines) == 9
    assert any(line.startswith("'=HYPERLINK(1).png,rejected,") for line in lines)  # neutralised, as exports
    client.force_login(UserFactory())
    assert client.get(f"{url}report.csv").status_code == 404
