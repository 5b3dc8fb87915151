"""Figure 4 files as ml.uncertainty writes them (its own writer, on tiny in-memory images), for the web tests."""
import io
import zipfile
from pathlib import Path

from PIL import Image

from ml.uncertainty import draw_class_grid, write_gallery

LABELS = ("Happiness", "Sadness")


def figure4_rows(per_group: int = 2) -> list[dict]:
    return [{"index": 10 * g + k, "lambda": 0.2 + 0.3 * k, "path": f"train/{g}_{k}.png", "given_label": label,
             "original_label": "Anger" if (g, k) == (0, 0) else label, "flipped": (g, k) == (0, 0)}
            for g, label in enumerate(LABELS) for k in range(per_group)]


def _images(rows):
    return {id(r): Image.new("RGB", (20, 20), (40 * r["index"] % 256, 120, 200)) for r in rows}


def figure4_gallery_bytes(tmp_path: Path, per_group: int = 2, thumb: int = 24) -> bytes:
    rows = figure4_rows(per_group)
    groups = [(label, [r for r in rows if r["given_label"] == label]) for label in LABELS]
    path = tmp_path / "figure4_gallery.zip"
    write_gallery(groups, _images(rows), path, thumb=thumb)
    return path.read_bytes()


def figure4_png_bytes() -> bytes:
    rows = figure4_rows()
    columns = {label: [r for r in rows if r["given_label"] == label] for label in LABELS}
    buffer = io.BytesIO()
    draw_class_grid(columns, _images(rows), tile=32).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


LAMBDAS_CSV = b"index,path,given_label,original_label,flipped,lambda\n0,train/0_0.png,Happiness,Anger,1,0.2\n"
