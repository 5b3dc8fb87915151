"""The study page's form for existing annotations: imports, reports, refuses bad files with a 400."""
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from study.models import ImportedVote
from tests.factories import StimulusFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def study(client):
    user = UserFactory()
    client.force_login(user)
    study = StudyFactory(owner=user)
    StimulusFactory(study=study, original_name="a.png")
    return study


def post(client, study, data: bytes, source="FER+ taggers"):
    return client.post(f"/studies/{study.slug}/import-votes/",
                       {"source": source, "file": SimpleUploadedFile("votes.csv", data, content_type="text/csv")})


def test_study_page_offers_the_form_and_an_upload_imports_and_reports(client, study):
    page = client.get(f"/studies/{study.slug}/").content.decode()
    assert "Existing annotations" in page and f"/studies/{study.slug}/import-votes/" in page
    response = post(client, study, b"filename,happy,sad\na.png,3,1\nb.png,2,2\n")
    assert response.status_code == 200
    html = response.content.decode()
    assert "FER+ taggers (counts format)" in html and "unknown images: b.png" in html
    assert sum(ImportedVote.objects.values_list("count", flat=True)) == 4
    assert "FER+ taggers" in client.get(f"/studies/{study.slug}/").content.decode()


def test_bad_file_and_missing_name_are_400_with_a_message(client, study):
    response = post(client, study, b"nothing,useful\n1,2\n")
    assert response.status_code == 400 and "No file name column" in response.content.decode()
    assert post(client, study, b"filename,happy\na.png,1\n", source="").status_code == 400
    assert not ImportedVote.objects.exists()


def test_other_researchers_cannot_import(client, study):
    client.force_login(UserFactory())
    assert post(client, study, b"filename,happy\na.png,1\n").status_code == 404
