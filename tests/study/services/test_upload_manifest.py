"""Browser upload = command line: a zip's manifest.csv is used by the web upload, and the report says so."""
import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command

from study.models import Stimulus, Study
from study.services.stimuli import stimuli_import_uploads
from tests.factories import StudyFactory, UserFactory, png_bytes

pytestmark = pytest.mark.django_db
MANIFEST = b"filename,label,valence,arousal,is_gold\nfaces/a.png,happy,0.5,0.2,1\nb.png,Anger,-0.3,0.1,0\n"


def zipped(members: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def upload(name: str, data: bytes, kind: str = "application/zip") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=kind)


def labels(study: Study) -> dict:
    return {s.original_name: (s.ground_truth, s.valence, s.is_gold) for s in Stimulus.objects.filter(study=study)}


def test_the_manifest_inside_an_uploaded_zip_is_used_and_reported(client):
    owner = UserFactory(is_staff=False)
    study = StudyFactory(owner=owner, status=Study.Status.DRAFT, gold_rate=0.1)
    archive = zipped({"faces/a.png": png_bytes(1), "faces/b.png": png_bytes(2), "faces/manifest.csv": MANIFEST})
    client.force_login(owner)
    response = client.post(f"/studies/{study.slug}/upload/", {"files": [upload("faces.zip", archive)]}, follow=True)
    page = response.content.decode()
    assert labels(study) == {"a.png": ("Happiness", 0.5, True), "b.png": ("Anger", -0.3, False)}
    assert "Manifest used: faces/manifest.csv in faces.zip (2 rows, 2 matched a file)" in page
    assert "no gold items" not in page  # the manifest made a gold item


def test_a_zip_without_manifest_says_so_and_launch_warns_about_missing_gold(client):
    owner = UserFactory(is_staff=False)
    study = StudyFactory(owner=owner, status=Study.Status.DRAFT, gold_rate=0.1)
    client.force_login(owner)
    page = client.post(f"/studies/{study.slug}/upload/", {"files": [upload("x.zip", zipped({"a.png": png_bytes(1)}))]},
                       follow=True).content.decode()
    assert "No manifest was used" in page and "no gold items" in page


def test_web_upload_and_command_line_give_the_same_stimuli(tmp_path):
    archive = zipped({"faces/a.png": png_bytes(1), "faces/b.png": png_bytes(2), "faces/manifest.csv": MANIFEST})
    (tmp_path / "faces.zip").write_bytes(archive)
    web, cli = StudyFactory(), StudyFactory()
    report = stimuli_import_uploads(study=web, files=[upload("faces.zip", archive)])
    out = io.StringIO()
    call_command("import_stimuli", cli.slug, str(tmp_path / "faces.zip"), stdout=out)
    assert labels(web) == labels(cli) and report.manifest_matched == 2
    assert "Manifest used: faces/manifest.csv in faces.zip" in out.getvalue()


def test_a_separately_uploaded_manifest_wins_over_the_one_in_the_zip():
    study = StudyFactory()
    archive = zipped({"a.png": png_bytes(1), "manifest.csv": b"filename,label\na.png,Fear\n"})
    separate = io.BytesIO(b"filename,label\na.png,Sadness\n")
    separate.name = "labels.csv"
    report = stimuli_import_uploads(study=study, files=[upload("set.zip", archive)], manifest=separate)
    assert labels(study)["a.png"][0] == "Sadness" and "uploaded manifest labels.csv" in report.manifest_summary()


def test_a_manifest_whose_file_column_is_called_file_or_path_is_understood():
    study = StudyFactory()
    archive = zipped({"faces/a.png": png_bytes(1), "manifest.csv": b"file,label\na.png,Fear\n"})
    report = stimuli_import_uploads(study=study, files=[upload("set.zip", archive)])
    assert labels(study)["a.png"][0] == "Fear" and report.manifest_matched == 1
    bad = zipped({"b.png": png_bytes(2), "manifest.csv": b"picture,label\nb.png,Fear\n"})
    from study.errors import InvalidArchive

    with pytest.raises(InvalidArchive, match="no 'filename' column"):
        stimuli_import_uploads(study=study, files=[upload("bad.zip", bad)])
