"""Figure 4 of the paper: training images ordered by their uncertainty factor λ.

    python -m ml.uncertainty --run runs/syn_uldl --out fig4.png [--n 24]

Reads `<run>/lambdas.csv` (index, path, given_label, original_label, flipped, lambda; written by ml.train
for ULDL/UAPL) and draws the n/2 training images with the lowest λ (the given label is doubted, the
neighbourhood trusted) above the n/2 with the highest λ. Each tile shows the given label and λ; images
whose label was flipped by label noise get a red frame and their true label.

Images are found by rebuilding the run's training set (from --dataset/--data-root, else the run's
run.json or checkpoint arguments) and reading row `index`; failing that, `path` is opened as a file
(absolute, or relative to the data root). Images that cannot be found are drawn as grey tiles.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from tqdm import tqdm

from ml.cli import argument_parser
from ml.csv_files import stripped_dict_reader

__all__ = ["read_lambdas", "select_extremes", "draw_grid", "get_args_parser", "main"]

FLIPPED = (210, 30, 30)
TEXT = (20, 20, 20)
MISSING = (170, 170, 170)


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

        extra = {"n": int(spec.get("synthetic_n") or 2000), "seed": int(spec.get("synthetic_seed") or 0)} \
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
    p.add_argument("--n", type=int, default=24, help="images in all: half lowest λ, half highest λ")
    p.add_argument("--columns", type=int, default=6, help="tiles per row")
    p.add_argument("--tile", type=int, default=96, help="tile size in pixels")
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
        if args.n < 2 or args.columns < 1 or args.tile < 16:
            raise FigureInputError("--n must be at least 2, --columns at least 1, --tile at least 16")
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
        lowest, highest = select_extremes(rows, args.n)
        source = ImageSource(spec, args.tile)
        if source.note:
            print(f"note: {source.note}", file=sys.stderr)
        images = {id(r): source.load(r) for r in tqdm(lowest + highest, desc="images", leave=False, disable=None)}
        found = sum(v is not None for v in images.values())
        figure = draw_grid([("lowest lambda: given label doubted", lowest),
                            ("highest lambda: given label trusted", highest)],
                           images, tile=args.tile, columns=args.columns)
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        figure.save(out)
    except (FigureInputError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
    flipped_low = sum(r["flipped"] for r in lowest)
    print(f"{out}: {len(lowest)} lowest and {len(highest)} highest λ of {len(rows)} images "
          f"({found} found; {flipped_low} of the lowest and {sum(r['flipped'] for r in highest)} of the highest "
          f"have flipped labels)")
    return {"lowest": lowest, "highest": highest, "images_found": found, "out": str(out)}


if __name__ == "__main__":
    main(get_args_parser().parse_args())
