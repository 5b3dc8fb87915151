"""Figure 4 as files for the web: the per-class PNG and the thumbnail gallery zip (ml.uncertainty --gallery),
and the demo model's run folder holding both (ml.demo_model.write_figures)."""
import csv
import io
import json
import zipfile

import pytest
from PIL import Image

from ml.demo_model import FIGURE4_PER_CLASS, FIGURE4_THUMB, figure4_paths, write_figures
from ml.uncertainty import GALLERY_COLUMNS, GALLERY_CSV, get_args_parser, main

LABELS = ["Happiness", "Sadness", "Anger"]


def synthetic_run(folder, n=18):
    """A run folder as ml.train leaves it for synthetic faces: run.json and lambdas.csv (λ falls with index)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "run.json").write_text(json.dumps({"dataset": "synthetic", "synthetic_n": n, "synthetic_seed": 3,
                                                 "image_size": 32}))
    with open(folder / "lambdas.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["index", "path", "given_label", "original_label", "flipped", "lambda"])
        for i in range(n):
            label = LABELS[i % 3]
            flipped = i == 1  # the highest λ of its class: always shown
            writer.writerow([i, f"synthetic/train/face_{i:05d}.png", label, LABELS[0] if flipped else label, int(flipped),
                             f"{1 - i / n:.4f}"])
    return folder


def gallery_rows(path):
    with zipfile.ZipFile(path) as archive:
        rows = list(csv.DictReader(io.StringIO(archive.read(GALLERY_CSV).decode())))
        images = {row["file"]: Image.open(io.BytesIO(archive.read(row["file"]))) for row in rows}
    return rows, images


def test_gallery_zip_holds_one_thumbnail_per_shown_image_with_its_caption(tmp_path):
    run = synthetic_run(tmp_path / "run")
    shown = main(get_args_parser().parse_args(["--run", str(run), "--out", str(tmp_path / "f.png"), "--per-class", "4",
                                               "--tile", "48", "--gallery", str(tmp_path / "g.zip"), "--thumb", "40"]))
    assert shown["thumbnails"] == 12 == len(shown["shown"])
    rows, images = gallery_rows(tmp_path / "g.zip")
    assert list(rows[0]) == list(GALLERY_COLUMNS)
    assert [row["group"] for row in rows] == [label for label in LABELS for _ in range(4)]  # class columns in order
    for label in LABELS:  # each class column ascends in λ, from its minimum to its maximum
        lam = [float(row["lambda"]) for row in rows if row["group"] == label]
        assert lam == sorted(lam) and len(lam) == 4
        assert all(row["given_label"] == label for row in rows if row["group"] == label)
    flipped = [row for row in rows if row["flipped"] == "1"]
    assert [(row["index"], row["original_label"]) for row in flipped] == [("1", "Happiness")]
    for image in images.values():
        assert image.format == "PNG" and image.size == (40, 40)
        image.load()


def test_gallery_of_the_extremes_layout_groups_lowest_then_highest(tmp_path):
    run = synthetic_run(tmp_path / "run")
    main(get_args_parser().parse_args(["--run", str(run), "--out", str(tmp_path / "f.png"), "--layout", "extremes",
                                       "--n", "4", "--gallery", str(tmp_path / "g.zip")]))
    rows, _ = gallery_rows(tmp_path / "g.zip")
    assert [row["group"].split()[0] for row in rows] == ["lowest", "lowest", "highest", "highest"]
    assert [row["index"] for row in rows] == ["17", "16", "0", "1"]


@pytest.mark.parametrize("argv, message", [(["--gallery", "g.png"], "give a .zip"),
                                           (["--gallery", "g.zip", "--thumb", "8"], "--thumb must lie")])
def test_bad_gallery_arguments_exit_2(tmp_path, capsys, argv, message):
    run = synthetic_run(tmp_path / "run")
    with pytest.raises(SystemExit) as info:
        main(get_args_parser().parse_args(["--run", str(run), "--out", str(tmp_path / "f.png"), *argv]))
    assert info.value.code == 2 and message in capsys.readouterr().err


def test_demo_run_folder_gets_its_figure4_png_and_gallery(tmp_path):
    synthetic_run(tmp_path / "demo_run", n=60)
    png, gallery = write_figures(tmp_path / "demo.pt")
    assert (png, gallery) == figure4_paths(tmp_path / "demo.pt")
    with Image.open(png) as figure:
        assert figure.format == "PNG"
        tile, pad = 96, 4  # draw_class_grid's cell: tile + pad wide; a column per given label
        assert figure.width == len(LABELS) * (tile + pad) + pad
        assert figure.height > FIGURE4_PER_CLASS * tile
        figure.load()
    rows, images = gallery_rows(gallery)
    assert len(rows) == len(LABELS) * FIGURE4_PER_CLASS
    assert {image.size for image in images.values()} == {(FIGURE4_THUMB, FIGURE4_THUMB)}
    # real faces, not grey "missing" tiles: a synthetic face has many colours
    assert all(len(image.convert("RGB").getcolors(maxcolors=10_000) or range(10_001)) > 20 for image in images.values())


def test_demo_figures_failing_is_a_note_not_a_failed_build(tmp_path, capsys):
    (tmp_path / "demo_run").mkdir()
    assert write_figures(tmp_path / "demo.pt") is None
    assert "no Figure 4" in capsys.readouterr().err
