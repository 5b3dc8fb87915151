"""`manage.py import_stimuli`: folders, zips (zip-slip, corrupt files), manifests, the report, clear CLI errors."""
import io
import zipfile

import pytest
from django.core.management import call_command, get_commands, load_command_class
from django.core.management.base import CommandError
from django.db import connections

from study.models import Stimulus
from tests.factories import StudyFactory, png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def study():
    return StudyFactory(slug="faces", status="draft")


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("import_stimuli", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def run_from_argv(monkeypatch, *args) -> tuple[int, str]:
    """Like `python manage.py import_stimuli ...`: exit status and stderr, as the shell sees them."""
    monkeypatch.setattr(connections, "close_all", lambda: None)  # keep the test's transaction open
    command = load_command_class(get_commands()["import_stimuli"], "import_stimuli")
    err = io.StringIO()
    command.stderr = err  # run_from_argv writes "CommandError: ..." here and exits 1
    command._called_from_command_line = True
    try:
        command.run_from_argv(["manage.py", "import_stimuli", *args])
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, err.getvalue()


def test_folder_import_reports_each_file_and_a_summary(study, tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "a.png").write_bytes(png_bytes(1))
    (tmp_path / "set" / "b.png").write_bytes(png_bytes(2))
    (tmp_path / "set" / "c.png").write_bytes(png_bytes(1))  # same bytes as a.png
    (tmp_path / "set" / "notes.txt").write_text("not an image")
    out, err = run("faces", str(tmp_path / "set"), "--source", "lab-2024")
    assert "imported   a.png" in out and "imported   b.png" in out
    assert "duplicate  c.png: already in this study as a.png (same file)" in out
    assert "rejected   notes.txt: not an image (JPEG, PNG or WebP expected)" in out
    assert "faces: 2 imported, 1 duplicate, 1 rejected; the study now has 2 images." in out
    assert "4/4" in err  # the tqdm progress bar, on stderr
    assert set(Stimulus.objects.values_list("source", flat=True)) == {"lab-2024"}


def test_running_twice_only_reports_duplicates(study, tmp_path):
    (tmp_path / "set").mkdir()
    (tmp_path / "set" / "a.png").write_bytes(png_bytes(1))
    run("faces", str(tmp_path / "set"))
    out, _ = run("faces", str(tmp_path / "set"))
    assert "0 imported, 1 duplicate, 0 rejected" in out
    assert Stimulus.objects.count() == 1


def test_zip_import_rejects_zip_slip_and_corrupt_files(study, tmp_path):
    archive = tmp_path / "faces.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("good/one.png", png_bytes(1))
        handle.writestr("../../etc/evil.png", png_bytes(2))
        full = png_bytes(3, size=64)
        handle.writestr("good/corrupt.png", full[: len(full) // 2])
        handle.writestr("__MACOSX/good/._one.png", b"fork")
    out, _ = run("faces", str(archive), "--no-progress")
    assert "imported   good/one.png" in out
    assert "rejected   ../../etc/evil.png: unsafe path in zip" in out
    assert "rejected   good/corrupt.png: corrupt or truncated image" in out
    assert "__MACOSX" not in out
    assert "1 imported, 0 duplicate, 2 rejected" in out
    assert not (tmp_path.parent / "etc").exists()
    assert Stimulus.objects.count() == 1


def test_manifest_good_and_bad_rows(study, tmp_path):
    root = tmp_path / "set"
    root.mkdir()
    for i in range(1, 4):
        (root / f"{i}.png").write_bytes(png_bytes(i))
    manifest = tmp_path / "labels.csv"
    manifest.write_text(
        "filename,label,valence,arousal,is_gold\n"
        "1.png,Happy,0.9,0.5,1\n"
        "2.png,Anger,2.5,0.1,0\n"
        "3.png,Confused,0,0,0\n"
        "4.png,Fear,0,0,0\n"
    )
    out, _ = run("faces", str(root), "--manifest", str(manifest), "--no-progress")
    assert "imported   1.png" in out
    assert "rejected   2.png: valence 2.5 is outside [-1, 1]" in out
    assert "rejected   3.png: label 'Confused' is not in the study's label set" in out
    assert "rejected   4.png: listed in the manifest (line 5) but no such file was found" in out
    assert "1 imported, 0 duplicate, 3 rejected" in out
    one = Stimulus.objects.get()
    assert (one.ground_truth, one.valence, one.arousal, one.is_gold) == ("Happiness", 0.9, 0.5, True)


def test_synthetic_dataset_folder_imports_with_its_own_manifest(study, tmp_path):
    from ml.data.synthetic import write_dataset

    write_dataset(tmp_path / "synthetic", 6, seed=3, gold_fraction=0.2)
    out, _ = run("faces", str(tmp_path / "synthetic"), "--no-progress")
    assert "6 imported, 0 duplicate, 0 rejected" in out
    assert Stimulus.objects.exclude(ground_truth="").count() == 6
    assert Stimulus.objects.filter(is_gold=True).count() == 1
    assert not Stimulus.objects.filter(valence__isnull=True).exists()


def test_unknown_slug_is_a_command_error_naming_the_existing_ones(study, tmp_path):
    with pytest.raises(CommandError, match=r"No study with the slug 'nope' \(existing: faces\)"):
        run("nope", str(tmp_path))


def test_missing_path_and_missing_manifest_are_command_errors(study, tmp_path):
    with pytest.raises(CommandError, match="no such file or folder"):
        run("faces", str(tmp_path / "absent"))
    with pytest.raises(CommandError, match="no such manifest file"):
        run("faces", str(tmp_path), "--manifest", str(tmp_path / "absent.csv"))


def test_unreadable_manifest_is_a_command_error(study, tmp_path):
    manifest = tmp_path / "labels.csv"
    manifest.write_text("name,label\na.png,Fear\n")
    with pytest.raises(CommandError, match="no 'filename' column"):
        run("faces", str(tmp_path), "--manifest", str(manifest))


def test_cli_errors_exit_1_with_a_message_and_no_traceback(study, tmp_path, monkeypatch):
    code, err = run_from_argv(monkeypatch, "nope", str(tmp_path))
    assert code == 1
    assert "CommandError: No study with the slug 'nope'" in err and "Traceback" not in err
    code, err = run_from_argv(monkeypatch, "faces", str(tmp_path / "absent"))
    assert code == 1 and "no such file or folder" in err and "Traceback" not in err
