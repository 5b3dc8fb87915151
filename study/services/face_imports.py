"""Detect and crop faces on import: each face found in an uploaded photo becomes one stimulus.

Studies with `face_crop` on ("square" or "aligned") import uncropped photos this way, in a worker (the
detector needs torch, which the web process never imports): study.tasks builds a FaceCropper from ml.faces
and hands it in, so this module stays torch-free. Per photo:

- The photo is checked like any upload (format, size, labels), turned upright by its EXIF orientation,
  and searched with the detector (RetinaFace, score >= 0.9). Faces whose box is under MIN_FACE_SIDE pixels
  are skipped, at most MAX_FACES_PER_PHOTO are kept (the best), and they are numbered in reading order:
  rows top to bottom (faces whose centres are within half a face height share a row), each left to right.
- Each face becomes a square crop around its box plus CROP_MARGIN (20%) on every side, unaligned (as
  FER2013-style models were trained) or rotated so the eyes are level ("aligned"); parts of the square
  outside the photo are black; crops wider than MAX_CROP_SIDE are scaled down. Crops are stored as PNG
  (lossless; the same photo always gives the same bytes, so a repeated upload is reported as duplicates).
- The stimulus keeps the source photo's name and the face box in its metadata (x, y, w, h in the upright
  photo's pixels, the detector score, the face's number): the exports' face columns (study.exports).
- A manifest row names the photo; its label, valence/arousal and gold flag apply to every face cropped
  from it (the report says so when a photo has several faces).
- A photo with no face is reported as "no face" and not imported, unless the researcher asked for such
  photos to be imported whole (keep_faceless).
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from PIL import Image, ImageOps

from study.models import Stimulus, Study
from study.services.stimuli import (
    DUPLICATE,
    NO_FACE,
    REJECTED,
    Importer,
    ImportResult,
    stimulus_import_file,
    stimulus_input_problem,
)

CROP_MARGIN = 0.2  # of the box's longer side, on each side (ml.faces.crop_face; the demo page uses the same)
MIN_FACE_SIDE = 24  # pixels: smaller detections are too small to show anyone
MAX_FACES_PER_PHOTO = 50
MAX_CROP_SIDE = 1024  # pixels: bigger crops are scaled down (participants and models see far less)


@dataclass(frozen=True)
class FaceCropper:
    """What a worker hands the import (built from ml.faces by study.tasks.face_cropper).

    detect(image) -> faces, best first, each with .box (x0, y0, x1, y1) in the image's pixels and .score;
    crop(image, face, margin=..., align=...) -> a square RGB PIL image;
    order(faces) -> the same faces in reading order, which numbers them (ml.faces.reading_order, as the demo page).
    """

    detect: Callable[[Image.Image], Sequence[Any]]
    crop: Callable[..., Image.Image]
    order: Callable[[list], list]
    align: bool = False

    @property
    def mode(self) -> str:
        return Study.FaceCrop.ALIGNED if self.align else Study.FaceCrop.SQUARE


def face_importer(*, cropper: FaceCropper, keep_faceless: bool = False) -> Importer:
    """An importer (see study.services.stimuli) that makes one stimulus of every face in a photo."""
    photos_seen: dict[int, set[str]] = {}  # per study: photos (sha256) with stimuli, read once, not per photo

    def import_photo(*, study: Study, name: str, data: bytes, ground_truth: str = "", valence=None, arousal=None,
                     is_gold: bool = False, source: str = "") -> list[ImportResult]:
        labels = {"ground_truth": ground_truth, "valence": valence, "arousal": arousal, "is_gold": is_gold}
        problem = stimulus_input_problem(study=study, data=data, **labels)
        if problem:
            return [ImportResult(name, REJECTED, problem)]
        sha256 = hashlib.sha256(data).hexdigest()
        if study.pk not in photos_seen:
            photos_seen[study.pk] = set(Stimulus.objects.filter(study=study, metadata__has_key="source_sha256")
                                        .values_list("metadata__source_sha256", flat=True))
        earlier = _already_imported(study, sha256) if sha256 in photos_seen[study.pk] else []
        if earlier:
            return earlier
        photos_seen[study.pk].add(sha256)
        try:
            photo = _upright_rgb(data)
        except Exception as exc:  # an untrusted decoder can fail in many ways (mode conversions included)
            return [ImportResult(name, REJECTED, f"cannot be read as a photo ({exc.__class__.__name__})")]
        source_meta = {"source_photo": name, "source_sha256": sha256, "source_width": photo.width,
                       "source_height": photo.height}
        faces, skipped = _faces(cropper, photo)
        if not faces:
            return [_faceless(study=study, name=name, data=data, source=source, meta=source_meta, skipped=skipped,
                              keep=keep_faceless, labels=labels)]
        shared = _shared_note(len(faces), labels)
        results = []
        for index, face in enumerate(faces, start=1):
            meta = {**source_meta, "faces_in_photo": len(faces), "face_index": index, **_box(face),
                    "face_score": round(float(face.score), 4), "face_crop": cropper.mode, "crop_margin": CROP_MARGIN}
            crop = cropper.crop(photo, face, margin=CROP_MARGIN, align=cropper.align)
            result = stimulus_import_file(
                study=study, name=f"{_stem(name)}_face{index}.png", data=_png(crop), source=source, metadata=meta,
                **labels)
            note = (f"face {index} of {len(faces)} (score {meta['face_score']:.3f}, box x={meta['face_x']} "
                    f"y={meta['face_y']} w={meta['face_w']} h={meta['face_h']})")
            reason = "; ".join(part for part in (note, result.reason, shared, skipped if index == 1 else "") if part)
            results.append(ImportResult(name, result.status, reason, result.stimulus, face=meta))
        return results

    return import_photo


def _already_imported(study: Study, sha256: str) -> list[ImportResult]:
    """The faces of a photo imported before, complete (all its faces), as duplicates; else [] (import it)."""
    earlier = list(Stimulus.objects.filter(study=study, metadata__source_sha256=sha256).order_by("pk"))
    if not earlier or len(earlier) < max(1, int(earlier[0].metadata.get("faces_in_photo") or 0)):
        return []  # never imported, or interrupted half-way: detect again (crops already stored come back as duplicates)
    results = []
    for stimulus in earlier:
        meta = stimulus.metadata
        if meta.get("face_index"):
            results.append(ImportResult(meta["source_photo"], DUPLICATE, f"face {meta['face_index']} of "
                                        f"{meta['faces_in_photo']}: photo already imported (duplicate of {stimulus})",
                                        stimulus, face=meta))
        else:
            results.append(ImportResult(meta["source_photo"], DUPLICATE,
                                        f"no face found; photo already imported whole (duplicate of {stimulus})",
                                        stimulus, faceless=True))
    return results


def _upright_rgb(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)  # phones store portraits sideways plus an orientation tag
        return upright.convert("RGB")


def _faces(cropper: FaceCropper, photo: Image.Image) -> tuple[list, str]:
    """(faces kept, numbered in reading order; a note on the ones skipped)."""
    found = list(cropper.detect(photo))
    kept = [face for face in found if min(face.box[2] - face.box[0], face.box[3] - face.box[1]) >= MIN_FACE_SIDE]
    small = len(found) - len(kept)
    over = max(len(kept) - MAX_FACES_PER_PHOTO, 0)
    kept = cropper.order(kept[:MAX_FACES_PER_PHOTO])
    notes = []
    if small:
        notes.append(f"{small} face{'s' if small != 1 else ''} under {MIN_FACE_SIDE} px skipped")
    if over:
        notes.append(f"{over} more face{'s' if over != 1 else ''} skipped (at most {MAX_FACES_PER_PHOTO} per photo)")
    return kept, "; ".join(notes)


def _box(face) -> dict:
    x0, y0, x1, y1 = (float(v) for v in face.box)
    return {"face_x": round(x0), "face_y": round(y0), "face_w": round(x1 - x0), "face_h": round(y1 - y0)}


def _faceless(*, study: Study, name: str, data: bytes, source: str, meta: dict, skipped: str, keep: bool,
              labels: dict) -> ImportResult:
    found = "no face found" + (f" ({skipped})" if skipped else "")
    if not keep:
        return ImportResult(name, NO_FACE, f"{found}; not imported", faceless=True)
    result = stimulus_import_file(study=study, name=name, data=data, source=source,
                                  metadata={**meta, "faces_in_photo": 0, "face_crop": "whole"}, **labels)
    reason = "; ".join(part for part in (f"{found}; imported whole", result.reason) if part)
    return ImportResult(name, result.status, reason, result.stimulus, faceless=True)


def _shared_note(faces: int, labels: dict) -> str:
    given = [what for what, value in (("label", labels["ground_truth"]), ("valence", labels["valence"]),
                                      ("arousal", labels["arousal"]), ("gold flag", labels["is_gold"]))
             if value not in (None, "", False)]
    if faces < 2 or not given:
        return ""
    return f"the manifest's {', '.join(given)} applies to all {faces} faces of this photo"


def _stem(name: str) -> str:
    return PurePosixPath(str(name).replace("\\", "/")).stem or "photo"


def _png(image: Image.Image) -> bytes:
    if max(image.size) > MAX_CROP_SIDE:
        image = image.resize((MAX_CROP_SIDE, MAX_CROP_SIDE), Image.LANCZOS)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()
