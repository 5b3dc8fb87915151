"""Manifests are read with their size checked first and parsed as a stream: bounded memory and time."""
import io
import time
import tracemalloc
import zipfile

import pytest

from study.errors import InvalidArchive
from study.services import stimuli
from study.services.stimuli import manifest_rows, stimuli_import_archive
from tests.factories import StudyFactory

pytestmark = pytest.mark.django_db


def _peak_mb(call) -> tuple[float, object]:
    tracemalloc.start()
    try:
        result = call()
    except Exception as exc:  # the rejection is part of what is measured
        result = exc
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak / 2**20, result


def test_a_zip_whose_manifest_inflates_far_beyond_the_limit_is_refused_without_reading_it(tmp_path):
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("manifest.csv", b"filename,label\n" + b"a" * (60 * 2**20))  # 60 MB, ~60 KB zipped
        archive.writestr("face.png", b"x")
    assert bomb.stat().st_size < 200_000
    study = StudyFactory()
    peak, result = _peak_mb(lambda: stimuli_import_archive(study=study, path=bomb))
    assert isinstance(result, InvalidArchive) and "manifest too large" in result.message
    assert peak < 5, f"{peak:.1f} MB allocated"


def test_a_manifest_stream_that_lies_about_its_size_is_cut_at_the_limit(monkeypatch):
    monkeypatch.setattr(stimuli, "MAX_MANIFEST_BYTES", 1 << 20)
    endless = io.BytesIO(b"filename,label\n" + b"a.png,Fear\n" * 200_000)  # 2.2 MB behind a 1 MB limit
    with pytest.raises(InvalidArchive, match="too large"):
        sum(1 for _ in manifest_rows(endless))
    assert endless.tell() <= (1 << 20) + 64 * 1024  # read stops at the limit (plus one buffer)


def test_a_manifest_with_more_rows_than_any_import_can_use_is_refused_early(monkeypatch):
    monkeypatch.setattr(stimuli, "MAX_MANIFEST_ROWS", 1000)
    many = b"filename\n" + b"".join(b"f%d.png\n" % i for i in range(50_000))
    started = time.monotonic()
    with pytest.raises(InvalidArchive, match="more than 1000 rows"):
        list(manifest_rows(many))
    assert time.monotonic() - started < 1


def test_a_large_valid_manifest_parses_in_bounded_memory():
    rows = 30_000
    data = b"filename,label,valence,arousal,is_gold\n" + b"".join(
        b"folder/img_%06d.png,Happiness,0.5,-0.25,0\n" % i for i in range(rows))
    peak, result = _peak_mb(lambda: stimuli._ManifestIndex(manifest_rows(io.BytesIO(data))))
    assert len(result.rows) == rows
    assert peak < 20, f"{peak:.1f} MB for {rows} rows"
