"""Stimulus import service: validation reasons, dedupe, content addressing, transactionality, archives, manifests."""
import hashlib
import io
import zipfile

import pytest
from django.db import DatabaseError, IntegrityError
from PIL import Image

from study.errors import InvalidArchive
from study.models import Stimulus
from study.services import stimuli as stimuli_service
from study.services.stimuli import (
    DUPLICATE,
    IMPORTED,
    REJECTED,
    manifest_parse,
    stimuli_import_archive,
    stimuli_import_uploads,
    stimulus_import_file,
)
from tests.factories import StudyFactory, png_bytes
from tests.files import make_zip

pytestmark = pytest.mark.django_db


def image_bytes(fmt: str, seed: int = 1, size: int = 16, **save_kwargs) -> bytes:
    image = Image.new("RGB", (size, size), ((seed * 40) % 256, 90, 160))
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **save_kwargs)
    return buffer.getvalue()


def animated_png() -> bytes:
    frames = [Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:], duration=100)
    return buffer.getvalue()


def media_files(media_root) -> list:
    return [path for path in media_root.rglob("*") if path.is_file()]


@pytest.fixture
def study():
    return StudyFactory(status="draft")


def rejected_reason(study, **kwargs) -> str:
    kwargs.setdefault("name", "x.png")
    kwargs.setdefault("data", png_bytes(1))
    result = stimulus_import_file(study=study, **kwargs)
    assert result.status == REJECTED, result
    assert not Stimulus.objects.filter(study=study).exists()
    return result.reason


# --- accepted files --------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,ext", [("PNG", "png"), ("JPEG", "jpg"), ("WEBP", "webp")])
def test_png_jpeg_and_webp_are_imported_content_addressed_with_their_size(study, fmt, ext, _media_root):
    data = image_bytes(fmt, size=20)
    result = stimulus_import_file(study=study, name="folder/face.bin", data=data, source="lab")
    assert result.status == IMPORTED and result.reason == ""
    stimulus = Stimulus.objects.get(pk=result.stimulus.pk)
    sha = hashlib.sha256(data).hexdigest()
    assert stimulus.sha256 == sha
    assert stimulus.image.name == f"stimuli/{study.pk}/{sha[:2]}/{sha}.{ext}"  # extension from the real format
    assert (_media_root / stimulus.image.name).read_bytes() == data
    assert (stimulus.width, stimulus.height) == (20, 20)
    assert stimulus.original_name == "face.bin" and stimulus.source == "lab"
    assert len(media_files(_media_root)) == 1


def test_label_aliases_and_case_map_to_the_study_spelling(study):
    for i, given in enumerate(["happy", "HAPPINESS", " Sad ", "surprised", "neutral"]):
        result = stimulus_import_file(study=study, name=f"{i}.png", data=png_bytes(i), ground_truth=given)
        assert result.status == IMPORTED, result
    stored = list(Stimulus.objects.filter(study=study).order_by("id").values_list("ground_truth", flat=True))
    assert stored == ["Happiness", "Happiness", "Sadness", "Surprise", "Neutral"]


def test_valence_arousal_and_gold_are_stored(study):
    result = stimulus_import_file(study=study, name="g.png", data=png_bytes(3), ground_truth="Anger",
                                  valence="-0.5", arousal=1.0, is_gold=True)
    assert result.status == IMPORTED
    stimulus = result.stimulus
    stimulus.refresh_from_db()
    assert (stimulus.valence, stimulus.arousal, stimulus.is_gold) == (-0.5, 1.0, True)


# --- each rejection reason -------------------------------------------------------------------------


def test_empty_file_is_rejected(study):
    assert rejected_reason(study, data=b"") == "empty file"


def test_file_over_the_byte_limit_is_rejected(study, monkeypatch):
    monkeypatch.setattr(stimuli_service, "MAX_IMAGE_BYTES", 50)
    assert "file too large" in rejected_reason(study, data=png_bytes(2))


def test_gif_is_rejected_as_unsupported_format(study):
    assert "unsupported image format GIF" in rejected_reason(study, data=image_bytes("GIF"))


def test_bmp_is_rejected_as_unsupported_format(study):
    assert "unsupported image format BMP" in rejected_reason(study, data=image_bytes("BMP"))


def test_text_file_is_rejected_as_not_an_image(study):
    assert "not an image" in rejected_reason(study, name="notes.png", data=b"hello, I am not a picture")


def test_truncated_png_is_rejected(study):
    data = image_bytes("PNG", size=64)
    assert "corrupt or truncated" in rejected_reason(study, data=data[: len(data) // 2])


def test_truncated_jpeg_is_rejected(study):
    data = image_bytes("JPEG", size=64, quality=95)
    assert "corrupt or truncated" in rejected_reason(study, data=data[: len(data) - 200])


def test_png_with_corrupted_pixel_data_is_rejected(study):
    data = bytearray(image_bytes("PNG", size=32))
    middle = len(data) // 2
    data[middle:middle + 8] = b"\x00\xff" * 4  # breaks the IDAT chunk's CRC / zlib stream
    assert "corrupt or truncated" in rejected_reason(study, data=bytes(data))


def test_image_with_too_many_pixels_is_rejected(study, monkeypatch):
    monkeypatch.setattr(stimuli_service, "MAX_IMAGE_PIXELS", 100)
    assert "too large" in rejected_reason(study, data=png_bytes(1, size=16))


def test_pillow_decompression_bomb_is_rejected(study, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 100)  # Pillow warns above this, errors above twice it
    assert "decompression bomb" in rejected_reason(study, data=png_bytes(1, size=12))
    assert "decompression bomb" in rejected_reason(study, data=png_bytes(1, size=16))


def test_animated_png_is_rejected(study):
    assert rejected_reason(study, data=animated_png()) == "animated images are not supported"


def test_label_outside_the_label_set_is_rejected_with_the_allowed_names(study):
    reason = rejected_reason(study, ground_truth="Boredom")
    assert "'Boredom' is not in the study's label set" in reason and "Happiness" in reason


@pytest.mark.parametrize("value,expected", [
    ("1.5", "valence 1.5 is outside [-1, 1]"),
    (-2, "valence -2 is outside [-1, 1]"),
    ("abc", "valence 'abc' is not a number"),
    ("nan", "valence nan is outside [-1, 1]"),
])
def test_valence_must_be_a_number_in_minus_one_to_one(study, value, expected):
    assert rejected_reason(study, valence=value) == expected


def test_arousal_out_of_range_is_rejected(study):
    assert rejected_reason(study, arousal="1.01") == "arousal 1.01 is outside [-1, 1]"


def test_gold_item_without_ground_truth_is_rejected(study):
    assert rejected_reason(study, is_gold=True) == "a gold item needs a ground-truth label"


# --- dedupe ----------------------------------------------------------------------------------------


def test_same_bytes_twice_in_a_study_is_a_duplicate_not_an_error(study, _media_root):
    first = stimulus_import_file(study=study, name="a.png", data=png_bytes(7))
    second = stimulus_import_file(study=study, name="b.png", data=png_bytes(7), ground_truth="Fear")
    assert first.status == IMPORTED
    assert second.status == DUPLICATE and second.reason == "already in this study as a.png (same file)" and second.ok
    assert second.stimulus.pk == first.stimulus.pk
    assert Stimulus.objects.filter(study=study).count() == 1
    assert len(media_files(_media_root)) == 1


def test_same_bytes_in_another_study_is_imported_again(study):
    other = StudyFactory(status="draft")
    assert stimulus_import_file(study=study, name="a.png", data=png_bytes(7)).status == IMPORTED
    assert stimulus_import_file(study=other, name="a.png", data=png_bytes(7)).status == IMPORTED


# --- transactionality ------------------------------------------------------------------------------


def test_failed_insert_leaves_no_file_and_no_row(study, monkeypatch, _media_root):
    def fail(self, *args, **kwargs):
        raise IntegrityError("simulated constraint failure")

    monkeypatch.setattr(Stimulus, "save", fail)
    result = stimulus_import_file(study=study, name="a.png", data=png_bytes(4))
    assert result.status == REJECTED and "could not be saved" in result.reason
    assert media_files(_media_root) == []
    monkeypatch.undo()
    assert not Stimulus.objects.exists()


def test_database_outage_during_insert_removes_the_file_and_raises(study, monkeypatch, _media_root):
    def fail(self, *args, **kwargs):
        raise DatabaseError("simulated outage")

    monkeypatch.setattr(Stimulus, "save", fail)
    with pytest.raises(DatabaseError):
        stimulus_import_file(study=study, name="a.png", data=png_bytes(4))
    assert media_files(_media_root) == []
    monkeypatch.undo()
    assert not Stimulus.objects.exists()


def test_a_bad_file_does_not_stop_the_others(study, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.png").write_bytes(png_bytes(1))
    (folder / "b.png").write_bytes(b"broken")
    (folder / "c.png").write_bytes(png_bytes(2))
    report = stimuli_import_archive(study=study, path=folder)
    assert [(r.name, r.status) for r in report.results] == [("a.png", IMPORTED), ("b.png", REJECTED), ("c.png", IMPORTED)]
    assert report.summary() == "2 imported, 0 duplicate, 1 rejected"


# --- folders, zips, uploads ------------------------------------------------------------------------


def test_folder_is_imported_recursively_skipping_hidden_and_macos_files(study, tmp_path):
    root = tmp_path / "faces"
    (root / "happy" / "deeper").mkdir(parents=True)
    (root / ".git").mkdir()
    (root / "__MACOSX").mkdir()
    (root / "happy" / "1.png").write_bytes(png_bytes(1))
    (root / "happy" / "deeper" / "2.jpg").write_bytes(image_bytes("JPEG", seed=2))
    (root / ".hidden.png").write_bytes(png_bytes(3))
    (root / ".git" / "x.png").write_bytes(png_bytes(4))
    (root / "__MACOSX" / "._1.png").write_bytes(b"resource fork")
    report = stimuli_import_archive(study=study, path=root)
    assert sorted(r.name for r in report.results) == ["happy/1.png", "happy/deeper/2.jpg"]
    assert report.counts() == {IMPORTED: 2, DUPLICATE: 0, REJECTED: 0}
    assert set(Stimulus.objects.values_list("source", flat=True)) == {"faces"}


def test_zip_slip_entries_are_rejected_and_nothing_is_written_outside(study, tmp_path, _media_root):
    archive = tmp_path / "faces.zip"
    archive.write_bytes(make_zip({
        "ok.png": png_bytes(1), "../evil.png": png_bytes(2), "/abs.png": png_bytes(3),
        "a/../../up.png": png_bytes(4), "__MACOSX/._ok.png": b"fork", "sub/.DS_Store": b"junk",
    }))
    report = stimuli_import_archive(study=study, path=archive)
    by_name = {r.name: r for r in report.results}
    assert set(by_name) == {"ok.png", "../evil.png", "/abs.png", "a/../../up.png"}
    assert by_name["ok.png"].status == IMPORTED
    for name in ("../evil.png", "/abs.png", "a/../../up.png"):
        assert by_name[name].status == REJECTED and "unsafe path" in by_name[name].reason
    assert not (tmp_path / "evil.png").exists() and not (tmp_path / "up.png").exists()
    assert len(media_files(_media_root)) == 1


def test_zip_member_over_the_size_limit_is_rejected_without_reading(study, tmp_path, monkeypatch):
    monkeypatch.setattr(stimuli_service, "MAX_IMAGE_BYTES", 1000)
    archive = tmp_path / "big.zip"
    archive.write_bytes(make_zip({"small.png": png_bytes(1), "huge.png": b"\0" * 50_000}))
    report = stimuli_import_archive(study=study, path=archive)
    by_name = {r.name: r for r in report.results}
    assert by_name["small.png"].status == IMPORTED
    assert by_name["huge.png"].status == REJECTED and "file too large" in by_name["huge.png"].reason


def test_zip_member_that_lies_about_its_size_is_cut_off(study, monkeypatch):
    monkeypatch.setattr(stimuli_service, "MAX_IMAGE_BYTES", 1000)
    archive = zipfile.ZipFile(io.BytesIO(make_zip({"bomb.png": b"\0" * 50_000})))
    info = archive.getinfo("bomb.png")
    info.file_size = 10  # the header claims 10 bytes: the 50 kB behind it are never accepted
    with pytest.raises(stimuli_service._Rejected, match="unreadable zip entry|file too large"):
        stimuli_service._read_member(archive, info)


def test_path_that_is_neither_folder_nor_zip_is_refused(study, tmp_path):
    not_zip = tmp_path / "x.png"
    not_zip.write_bytes(png_bytes(1))
    with pytest.raises(InvalidArchive, match="not a folder or a .zip"):
        stimuli_import_archive(study=study, path=not_zip)
    with pytest.raises(InvalidArchive, match="does not exist"):
        stimuli_import_archive(study=study, path=tmp_path / "missing")


class FakeUpload(io.BytesIO):
    def __init__(self, name: str, data: bytes):
        super().__init__(data)
        self.name, self.size = name, len(data)


def test_uploads_mix_loose_images_and_zips(study):
    files = [FakeUpload("one.png", png_bytes(1)), FakeUpload("more.zip", make_zip({"x/two.png": png_bytes(2)})),
             FakeUpload("bad.zip", b"not a zip at all")]
    report = stimuli_import_uploads(study=study, files=files)
    assert [(r.name, r.status) for r in report.results] == [
        ("one.png", IMPORTED), ("x/two.png", IMPORTED), ("bad.zip", REJECTED)]
    assert "not a readable zip" in report.results[2].reason


# --- manifests -------------------------------------------------------------------------------------


MANIFEST = (
    "filename,label,valence,arousal,is_gold,extra\n"
    "happy/1.png,happy,0.8,0.4,1,ignored\n"  # relative path
    "2.png,Sad,-0.7,-0.3,0,\n"  # base name of a nested file
    "3.png,Bored,0,0,0,\n"  # label not in the set
    "4.png,Anger,abc,0.1,0,\n"  # valence not a number
    "5.png,Anger,0.1,0.1,maybe,\n"  # is_gold not a boolean
    "6.png,,,,1,\n"  # gold without a label
    "missing.png,Fear,0,0,0,\n"  # no such file
    "2.png,Fear,0,0,0,\n"  # listed twice
)


def test_manifest_labels_values_and_errors_per_file(study, tmp_path):
    root = tmp_path / "set"
    (root / "happy").mkdir(parents=True)
    (root / "sad").mkdir()
    (root / "happy" / "1.png").write_bytes(png_bytes(1))
    (root / "sad" / "2.png").write_bytes(png_bytes(2))
    for i in (3, 4, 5, 6, 7):
        (root / f"{i}.png").write_bytes(png_bytes(i))
    manifest = tmp_path / "labels.csv"
    manifest.write_text(MANIFEST)
    report = stimuli_import_archive(study=study, path=root, manifest=manifest)
    by_name = {r.name: r for r in report.results}
    assert by_name["happy/1.png"].status == IMPORTED
    assert by_name["sad/2.png"].status == IMPORTED
    assert by_name["7.png"].status == IMPORTED  # not in the manifest: imported without labels
    assert "'Bored' is not in the study's label set" in by_name["3.png"].reason
    assert by_name["4.png"].reason == "valence 'abc' is not a number"
    assert "is_gold 'maybe'" in by_name["5.png"].reason
    assert by_name["6.png"].reason == "a gold item needs a ground-truth label"
    assert by_name["missing.png"].status == REJECTED and "no such file was found" in by_name["missing.png"].reason
    assert any("listed again in the manifest (line 9); line 3 is used" in r.reason for r in report.results)
    one = Stimulus.objects.get(original_name="1.png")
    assert (one.ground_truth, one.valence, one.arousal, one.is_gold) == ("Happiness", 0.8, 0.4, True)
    two = Stimulus.objects.get(original_name="2.png")
    assert (two.ground_truth, two.is_gold) == ("Sadness", False)
    assert Stimulus.objects.get(original_name="7.png").ground_truth == ""


def test_manifest_inside_a_zip_is_used_and_not_imported(study, tmp_path):
    archive = tmp_path / "set.zip"
    archive.write_bytes(make_zip({
        "dataset/manifest.csv": "filename,label\nimages/a.png,Fear\n",
        "dataset/images/a.png": png_bytes(1),
    }))
    report = stimuli_import_archive(study=study, path=archive)
    assert [(r.name, r.status) for r in report.results] == [("dataset/images/a.png", IMPORTED)]
    assert Stimulus.objects.get().ground_truth == "Fear"


def test_manifest_without_a_filename_column_is_refused():
    with pytest.raises(InvalidArchive, match="no 'filename' column"):
        manifest_parse(b"picture,label\na.png,Fear\n")  # "file", "path", "image" would be accepted


def test_manifest_that_is_not_utf8_is_refused():
    with pytest.raises(InvalidArchive, match="not UTF-8"):
        manifest_parse("filename,label\nä.png,Fear\n".encode("utf-16"))


def test_manifest_with_a_bom_and_blank_lines_is_read():
    rows = manifest_parse("\ufeffFilename , Label\n\na.png,Fear\n".encode())
    assert [(row.filename, row.label, row.line) for row in rows] == [("a.png", "Fear", 3)]
