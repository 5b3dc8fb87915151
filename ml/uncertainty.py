"""Figure 4 of the paper: training images ordered by their uncertainty factor λ.

    python -m ml.uncertainty --run runs/syn_uldl --out fig4.png [--per-class 6]
    python -m ml.uncertainty --run runs/syn_uldl --out extremes.png --layout extremes --n 24
    python -m ml.uncertainty --run runs/syn_uldl --out fig4.png --gallery fig4_gallery.zip

Reads `<run>/lambdas.csv` (index, path, given_label, original_label, flipped, lambda; written by ml.train
for ULDL/UAPL). The default `per-class` layout is the paper's Figure 4: one column per given label, images
ordered by λ from top (lowest λ: the given label is doubted, the neighbourhood trusted) to bottom (highest
λ), evenly spaced over that class's λ range, so the top row holds each class's minimum and the bottom row
its maximum. `extremes` draws the n/2 lowest-λ images of all classes above the n/2 highest. Each tile shows
λ (and the given label); images whose label was flipped by label noise get a red frame and their true label.

Images are found by rebuilding the run's training set (from --dataset/--data-root, else the run's
run.json or checkpoint arguments) and reading row `index`; failing that, `path` is opened as a file
(absolute, or relative to the data root). Images that cannot be found are drawn as grey tiles.

`--gallery ZIP` also writes the shown images as separate thumbnails with their captions (gallery.csv: file,
group, index, path, given_label, original_label, flipped, lambda; one row per image in display order), which
EmoStudy's comparison view shows as a captioned gallery (`register_model --figure4-gallery`).
"""
from __future__ import annotations

import argparse
import csv
import io
import json
import math
import sys
import zipfile
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from ml.cli import argument_parser
from ml.csv_files import stripped_dict_reader

__all__ = ["read_lambdas", "select_extremes", "select_per_class", "draw_grid", "draw_class_grid",
           "write_gallery", "write_figure4", "get_args_parser", "main", "GALLERY_CSV", "GALLERY_COLUMNS"]

FLIPPED = (210, 30, 30)
TEXT = (20, 20, 20)
MISSING = (170, 170, 170)


GALLERY_CSV = "gallery.csv"
GALLERY_COLUMNS = ("file", "group", "index", "path", "given_label", "original_label", "flipped", "lambda")


class FigureInputError(ValueError):
    """Unusable lambdas.csv or run folder; reported as `error: ...` with exit status 2."""


def read_lambdas(path: Path) -> list[dict]:
    """Rows of lambdas.csv as dicts: index (int), lambda (float), path, given_label, original_label, flipped."""
    if not path.is_file():
        raise FigureInputError(f"no lambdas.csv at {path} (ml.train writes it for --method uldl or uapl)")
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader, header = stripped_dict_reader(fh)
        lam_col = next((c for c in ("lambda", "lam") if c in header), None)
        if lam_col is None:
            raise FigureInputError(f"{path}: needs a 'lambda' column; found {header}")
        rows = []
        for line, raw in enumerate(reader, start=2):
            try:
                lam = float(raw[lam_col])
                index = int(raw["index"]) if raw.get("index", "").strip() else line - 2
            except (TypeError, ValueError):
                raise FigureInputError(f"{path}:{line}: lambda {raw.get(lam_col)!r} or index "
                                       f"{raw.get('index')!r} is not a number") from None
            if math.isnan(lam):
                continue
            flipped = str(raw.get("flipped", "")).strip().lower() in ("1", "true", "yes")
            rows.append({"index": index, "lambda": lam, "path": (raw.get("path") or "").strip(),
                         "given_label": (raw.get("given_label") or "").strip(),
                         "original_label": (raw.get("original_label") or "").strip(), "flipped": flipped})
    if not rows:
        raise FigureInputError(f"{path}: no rows with a lambda value")
    return rows


def select_extremes(rows: list[dict], n: int) -> tuple[list[dict], list[dict]]:
    """The ceil(n/2) lowest-λ rows (ascending) and the floor(n/2) highest (descending), never overlapping."""
    ordered = sorted(rows, key=lambda r: (r["lambda"], r["index"]))
    n = min(n, len(ordered))
    n_low = (n + 1) // 2
    lowest = ordered[:n_low]
    highest = ordered[n_low:][::-1][: n - n_low]
    return lowest, highest


def select_per_class(rows: list[dict], per_class: int) -> dict[str, list[dict]]:
    """{given label: up to per_class rows ordered by ascending λ, evenly spaced over the class's λ order}.

    Classes appear in first-seen order of lambdas.csv; spacing keeps the class's minimum and maximum λ.
    """
    by_class: dict[str, list[dict]] = {}
    for row in rows:
        by_class.setdefault(row["given_label"] or "?", []).append(row)
    out = {}
    for label, members in by_class.items():
        ordered = sorted(members, key=lambda r: (r["lambda"], r["index"]))
        if len(ordered) <= per_class:
            out[label] = ordered
            continue
        picks = sorted({round(k * (len(ordered) - 1) / max(per_class - 1, 1)) for k in range(per_class)})
        out[label] = [ordered[i] for i in picks]
    return out


def draw_class_grid(columns: dict[str, list[dict]], images: dict[int, Image.Image | None], *, tile: int = 96
                    ) -> Image.Image:
    """One column per given label (its name on top), tiles ordered by λ top to bottom, λ under each tile."""
    small = max(9, tile // 9)
    font = _font(small)
    line = small + 3
    caption, header, pad = 2 * line + 4, small + 14, 4
    rows = max((len(v) for v in columns.values()), default=1)
    cell_w, cell_h = tile + pad, tile + caption + pad
    canvas = Image.new("RGB", (len(columns) * cell_w + pad, header + rows * cell_h + pad + line), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, (label, members) in enumerate(columns.items()):
        x = pad + c * cell_w
        draw.text((x, 5), _fit(draw, f"given: {label}", font, tile), fill=TEXT, font=font)
        for r, row in enumerate(members):
            y = header + r * cell_h
            image = images.get(id(row))
            if image is None:
                draw.rectangle((x, y, x + tile - 1, y + tile - 1), fill=MISSING)
            else:
                canvas.paste(image.convert("RGB").resize((tile, tile), Image.BILINEAR), (x, y))
            if row["flipped"]:
                draw.rectangle((x, y, x + tile - 1, y + tile - 1), outline=FLIPPED, width=max(2, tile // 32))
            colour = FLIPPED if row["flipped"] else TEXT
            draw.text((x, y + tile + 2), f"lambda {row['lambda']:.3f}", fill=colour, font=font)
            if row["flipped"]:
                draw.text((x, y + tile + 2 + line), _fit(draw, f"true: {row['original_label']}", font, tile),
                          fill=colour, font=font)
    draw.text((pad, canvas.height - line - 2), "top: lowest lambda (label doubted); bottom: highest (trusted); "
              "red: label flipped by noise", fill=TEXT, font=font)
    return canvas


def write_gallery(groups: list[tuple[str, list[dict]]], images: dict[int, Image.Image | None], out: Path, *,
                  thumb: int = 96) -> int:
    """Zip of one `thumb` x `thumb` PNG per shown image (img/NNNN.png) and gallery.csv with each image's
    group (class column or lowest/highest), given label, λ and flip, in display order. Images that were not
    found are left out. Returns how many thumbnails were written.

    A zip, not a folder, so that a researcher can attach it to a model in one file.
    """
    table = io.StringIO()
    writer = csv.writer(table, lineterminator="\n")
    writer.writerow(GALLERY_COLUMNS)
    written = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w") as archive:
        for group, rows in groups:
            for row in rows:
                image = images.get(id(row))
                if image is None:
                    continue
                name = f"img/{written:04d}.png"
                png = io.BytesIO()
                image.convert("RGB").resize((thumb, thumb), Image.BILINEAR).save(png, format="PNG", optimize=True)
                archive.writestr(name, png.getvalue(), compress_type=zipfile.ZIP_STORED)  # PNG is compressed already
                writer.writerow([name, group, row["index"], row["path"], row["given_label"], row["original_label"],
                                 int(bool(row["flipped"])), f"{row['lambda']:.6f}"])
                written += 1
        archive.writestr(GALLERY_CSV, table.getvalue(), compress_type=zipfile.ZIP_DEFLATED)
    return written


def write_figure4(run_dir: str | Path, *, out: str | Path, gallery: str | Path | None = None, per_class: int = 6,
                  tile: int = 96, thumb: int = 96) -> dict:
    """The per-class Figure 4 PNG (and its thumbnail gallery zip) of a run folder, as the CLI would write them."""
    argv = ["--run", str(run_dir), "--out", str(out), "--per-class", str(per_class), "--tile", str(tile),
            "--thumb", str(thumb)]
    if gallery is not None:
        argv += ["--gallery", str(gallery)]
    return main(get_args_parser().parse_args(argv))


def _run_spec(run_dir: Path | None) -> dict:
    """The run's training arguments: run.json (ml.noise), else a checkpoint's 'args' (needs torch)."""
    if run_dir is None:
        return {}
    if (run_dir / "run.json").is_file():
        try:
            return dict(json.loads((run_dir / "run.json").read_text()))
        except (ValueError, TypeError):
            pass
    for name in ("last.pt", "best.pt"):
        if (run_dir / name).is_file():
            from ml.checkpoints import CheckpointError, load_checkpoint

            try:
                return dict(load_checkpoint(run_dir / name, task=None).get("args") or {})
            except CheckpointError:
                continue
    return {}


class ImageSource:
    """Finds the image of a lambdas.csv row: the rebuilt training set first, then the path as a file."""

    def __init__(self, spec: dict, size: int):
        self.dataset, self.by_path, self.note = None, {}, ""
        self.root = Path(spec["data_root"]) if spec.get("data_root") else None
        name = spec.get("dataset")
        if not name:
            self.note = "no dataset known (pass --dataset/--data-root); opening paths as files"
            return
        from ml.data import build_dataset
        from ml.data.base import DatasetError

        extra = {"n": int(spec.get("synthetic_n") or 2000), "seed": int(spec.get("synthetic_seed") or 0),
                 "ambiguity": float(spec.get("synthetic_ambiguity") or 0.3),
                 "occlusion_rate": float(spec.get("synthetic_occlusion_rate") or 0.0)} \
            if name == "synthetic" else {}
        try:
            self.dataset = build_dataset(name, spec.get("data_root"), "train", train=False, image_size=size,
                                         **extra)
        except (DatasetError, OSError) as exc:
            self.note = f"cannot rebuild the {name} training set ({exc}); opening paths as files"
            return
        self.by_path = {p: i for i, p in enumerate(self.dataset.paths)}

    def load(self, row: dict) -> Image.Image | None:
        ds = self.dataset
        if ds is not None:
            i = row["index"]
            if 0 <= i < len(ds) and (not row["path"] or ds.paths[i] == row["path"]):
                return ds.load_image(i)
            if row["path"] in self.by_path:
                return ds.load_image(self.by_path[row["path"]])
        if row["path"]:
            for candidate in (Path(row["path"]), (self.root / row["path"]) if self.root else None):
                if candidate is not None and candidate.is_file():
                    try:
                        with Image.open(candidate) as image:
                            return image.convert("RGB")
                    except OSError:
                        return None
        return None


def _font(size: int):
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow without FreeType: the fixed bitmap font
        return ImageFont.load_default()


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    while text and draw.textlength(text, font=font) > width:
        text = text[:-1]
    return text


def draw_grid(groups: list[tuple[str, list[dict]]], images: dict[int, Image.Image | None], *, tile: int = 96,
              columns: int = 6) -> Image.Image:
    """Titled blocks of tiles: the image, then the given label and λ (and the true label if flipped).

    Text says "lambda": Pillow's built-in font has no Greek letters.
    """
    font = _font(max(9, tile // 9))
    small = max(9, tile // 9)
    line = small + 3
    caption = 3 * line + 4
    title_h = small + 12
    pad = 4
    cell_w, cell_h = tile + pad, tile + caption + pad
    heights = [title_h + math.ceil(max(1, len(rows)) / columns) * cell_h for _, rows in groups]
    canvas = Image.new("RGB", (columns * cell_w + pad, sum(heights) + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    y0 = pad
    for (title, rows), height in zip(groups, heights, strict=False):
        draw.text((pad, y0 + 4), title, fill=TEXT, font=font)
        for k, row in enumerate(rows):
            x = pad + (k % columns) * cell_w
            y = y0 + title_h + (k // columns) * cell_h
            image = images.get(id(row))
            if image is None:
                draw.rectangle((x, y, x + tile - 1, y + tile - 1), fill=MISSING)
                draw.text((x + 4, y + tile // 2 - small // 2), "missing", fill=TEXT, font=font)
            else:
                canvas.paste(image.convert("RGB").resize((tile, tile), Image.BILINEAR), (x, y))
            if row["flipped"]:
                draw.rectangle((x, y, x + tile - 1, y + tile - 1), outline=FLIPPED, width=max(2, tile // 32))
            colour = FLIPPED if row["flipped"] else TEXT
            texts = [f"given: {row['given_label'] or '?'}", f"lambda {row['lambda']:.3f}"]
            if row["flipped"]:
                texts.append(f"true: {row['original_label'] or '?'}")
            for j, text in enumerate(texts):
                draw.text((x, y + tile + 2 + j * line), _fit(draw, text, font, tile), fill=colour, font=font)
        y0 += height
    return canvas


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    p = argument_parser("ml.uncertainty", "Figure 4: training images with the lowest and highest uncertainty "
                        "factor λ, labelled with the given label and λ; flipped labels marked.", add_help=add_help)
    p.add_argument("--run", default=None, help="ml.train output folder holding lambdas.csv")
    p.add_argument("--lambdas", default=None, help="a lambdas.csv to read instead of <run>/lambdas.csv")
    p.add_argument("--out", required=True, help="PNG (or any Pillow format) to write")
    p.add_argument("--layout", choices=("per-class", "extremes"), default="per-class",
                   help="per-class: the paper's Figure 4, a column per given label ordered by λ; "
                        "extremes: the n/2 lowest and n/2 highest λ of all images")
    p.add_argument("--per-class", type=int, default=6, help="per-class layout: images per class column")
    p.add_argument("--n", type=int, default=24, help="extremes layout: images in all, half lowest, half highest")
    p.add_argument("--columns", type=int, default=6, help="tiles per row")
    p.add_argument("--tile", type=int, default=96, help="tile size in pixels")
    p.add_argument("--gallery", default=None,
                   help="also write the shown images as a zip of thumbnails with gallery.csv (captions), for "
                        "EmoStudy's uncertainty tab (register_model --figure4-gallery)")
    p.add_argument("--thumb", type=int, default=96, help="--gallery: thumbnail size in pixels")
    p.add_argument("--dataset", default=None, choices=("synthetic", "rafdb", "affectnet", "folder"),
                   help="training set of the run (default: from the run's run.json or checkpoint)")
    p.add_argument("--data-root", default=None, help="its folder (default: from the run)")
    p.add_argument("--synthetic-n", type=int, default=None, help="synthetic training faces (default: from the run)")
    p.add_argument("--synthetic-seed", type=int, default=None, help="synthetic seed (default: from the run)")
    return p


def main(args: argparse.Namespace) -> dict:
    """Write the figure; returns {'lowest': rows, 'highest': rows, 'images_found': int, 'out': path}."""
    try:
        if not args.run and not args.lambdas:
            raise FigureInputError("pass --run DIR (with lambdas.csv) or --lambdas CSV")
        if args.n < 2 or args.columns < 1 or args.tile < 16 or getattr(args, "per_class", 6) < 1:
            raise FigureInputError("--n must be at least 2, --per-class and --columns at least 1, --tile at least 16")
        if args.gallery and not (16 <= args.thumb <= 512):
            raise FigureInputError("--thumb must lie between 16 and 512 pixels")
        if args.gallery and Path(args.gallery).suffix.lower() != ".zip":
            raise FigureInputError(f"--gallery {args.gallery}: give a .zip file name")
        if Path(args.out).suffix.lower() not in Image.registered_extensions():
            raise FigureInputError(f"--out {args.out}: unknown image format (use .png)")
        run_dir = Path(args.run) if args.run else None
        if run_dir is not None and not run_dir.is_dir():
            raise FigureInputError(f"run folder not found: {run_dir}")
        rows = read_lambdas(Path(args.lambdas) if args.lambdas else run_dir / "lambdas.csv")
        spec = _run_spec(run_dir)
        for key in ("dataset", "data_root", "synthetic_n", "synthetic_seed"):
            if getattr(args, key) is not None:
                spec[key] = getattr(args, key)
        layout = getattr(args, "layout", "per-class")
        if layout == "per-class":
            columns = select_per_class(rows, args.per_class)
            shown = [r for members in columns.values() for r in members]
            lowest = [members[0] for members in columns.values()]
            highest = [members[-1] for members in columns.values()]
        else:
            lowest, highest = select_extremes(rows, args.n)
            shown = lowest + highest
        source = ImageSource(spec, int(spec.get("image_size") or args.tile))  # the run's size: cached faces
        if source.note:
            print(f"note: {source.note}", file=sys.stderr)
        images = {id(r): source.load(r) for r in tqdm(shown, desc="images", leave=False, disable=None)}
        found = sum(v is not None for v in images.values())
        if layout == "per-class":
            figure = draw_class_grid(columns, images, tile=args.tile)
        else:
            figure = draw_grid([("lowest lambda: given label doubted", lowest),
                                ("highest lambda: given label trusted", highest)],
                               images, tile=args.tile, columns=args.columns)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.save(out)
        thumbnails = 0
        if args.gallery:
            groups = list(columns.items()) if layout == "per-class" else [
                ("lowest λ: given label doubted", lowest), ("highest λ: given label trusted", highest)]
            thumbnails = write_gallery(groups, images, Path(args.gallery), thumb=args.thumb)
    except (FigureInputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    flipped_low = sum(r["flipped"] for r in lowest)
    print(f"{out}: {len(shown)} of {len(rows)} images ({found} found; {flipped_low} of the {len(lowest)} lowest-λ "
          f"and {sum(r['flipped'] for r in highest)} of the {len(highest)} highest-λ shown have flipped labels)")
    if args.gallery:
        print(f"{args.gallery}: {thumbnails} thumbnails of {args.thumb}px with their captions (gallery.csv)")
    return {"lowest": lowest, "highest": highest, "shown": shown, "images_found": found, "out": str(out),
            "gallery": args.gallery, "thumbnails": thumbnails}


if __name__ == "__main__":
    main(get_args_parser().parse_args())
