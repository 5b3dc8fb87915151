"""Uploads beyond a small size are stored, then imported by a worker with progress and a final report."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from study.models import Stimulus, UploadBatch
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
