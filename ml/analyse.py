"""One photo -> every face's emotion distribution under each model: what the demo page and photo imports run.

    result, crops = analyse_photo(image, models={"baseline": predictor, ...}, detector=get_detector())

`result` is plain JSON (boxes in original pixels, per face and model the probabilities in the model's
class order, the top two classes, the ambiguity as normalised entropy and in words); `crops` are the
face crops (PIL) in the same order, for donation or import. No face found -> `result["faces"] == []`
unless whole_image=True, which classifies the whole photo as one face.
"""
from __future__ import annotations

import math
import time
from collections.abc import Mapping

import numpy as np
from PIL import Image

from ml.faces import Face, FaceDetector, crop_face, reading_order

__all__ = ["ambiguity", "ambiguity_word", "analyse_photo"]

CROP_MARGIN = 0.2


def ambiguity(probs) -> float:
    """Normalised entropy in [0, 1]: 0 = all mass on one class, 1 = uniform."""
    p = np.clip(np.asarray(probs, dtype=np.float64), 0, None)
    if p.size < 2 or p.sum() <= 0:
        return 0.0
    p = p / p.sum()
    nz = p[p > 0]
    return float(-(nz * np.log(nz)).sum() / math.log(p.size))


def ambiguity_word(value: float) -> str:
    """'clear' (< 0.35), 'mixed' (< 0.65), else 'ambiguous'."""
    return "clear" if value < 0.35 else "mixed" if value < 0.65 else "ambiguous"


def analyse_photo(image: Image.Image, models: Mapping[str, object], *, detector: FaceDetector | None,
                  va_model=None, whole_image: bool = False, max_faces: int = 20) -> tuple[dict, list[Image.Image]]:
    """Detect, crop and classify. `models`: key -> Predictor-like (`.classes`, `.predict(list[PIL])`)."""
    started = time.perf_counter()
    image = image.convert("RGB")
    if whole_image or detector is None:
        side = float(min(image.size))
        faces = [Face(box=((image.width - side) / 2, (image.height - side) / 2,
                           (image.width + side) / 2, (image.height + side) / 2),
                      landmarks5=(), score=1.0)]
        crops = [crop_face(image, faces[0], margin=0.0)]
    else:
        # the best max_faces, then numbered in reading order (rows top to bottom, each left to right)
        faces = reading_order(detector.detect(image)[:max_faces])
        crops = [crop_face(image, face, margin=CROP_MARGIN) for face in faces]
    detect_ms = (time.perf_counter() - started) * 1000
    per_face: list[dict] = [{"number": i + 1, **face.as_dict(), "models": {}} for i, face in enumerate(faces)]
    if crops:
        for key, predictor in models.items():
            probs = predictor.predict(crops)
            for entry, row in zip(per_face, probs, strict=True):
                order = np.argsort(row)[::-1]
                amb = ambiguity(row)
                entry["models"][key] = {
                    "classes": list(predictor.classes), "probs": [round(float(v), 5) for v in row],
                    "top": predictor.classes[order[0]], "second": predictor.classes[order[1]],
                    "ambiguity": round(amb, 4), "ambiguity_word": ambiguity_word(amb),
                }
        if va_model is not None:
            for entry, (v, a) in zip(per_face, va_model.predict_va(crops), strict=True):
                entry["valence"], entry["arousal"] = round(float(v), 4), round(float(a), 4)
    result = {"width": image.width, "height": image.height, "whole_image": bool(whole_image or detector is None),
              "faces": per_face, "detect_ms": round(detect_ms, 1),
              "total_ms": round((time.perf_counter() - started) * 1000, 1)}
    return result, crops
