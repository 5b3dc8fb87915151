"""Synthetic faces with known emotion mixtures, valence/arousal and simulated annotator votes.

Public FER datasets cannot be downloaded here, so the project draws its own faces (numpy + Pillow only,
no torch: the web process uses this to seed the demo study). A face is a set of continuous facial
"actions" (brow raise, brow furrow, eye openness, mouth curve, ...). Each emotion is a prototype vector
of actions, and a face shows the mixture-weighted sum of the prototypes, so a mixed mixture draws a
visibly mixed face. Every face carries:

- its true mixture over emotions: a Dirichlet around a dominant emotion, wider with `ambiguity`;
- its true valence/arousal: the mixture of each emotion's circumplex position, plus a little noise;
- a simulated annotator panel: votes ~ Multinomial(n_annotators, mixture ** (1/T) renormalised).

Identity (head shape, skin, hair, eye colour), lighting, pose and noise are drawn from the same seed,
independently of the expression, so a classifier must read the expression to succeed.

CLI: python -m ml.data.synthetic --out DIR --n 200 --seed 0 [--contact-sheet sheet.png]
"""
from __future__ import annotations

import argparse
import csv
import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from ml.labels import AFFECTNET8, RAFDB_BASIC7, canonical_label

__all__ = [
    "EMOTIONS", "EMOTION_VA", "OCCLUSIONS", "DRAWING_VERSION", "SyntheticFace", "generate_face", "generate_faces",
    "write_dataset", "contact_sheet", "main",
]

EMOTIONS: tuple[str, ...] = (*tuple(RAFDB_BASIC7), "Contempt")
OCCLUSIONS = ("sunglasses", "mask", "hand")

# Circumplex positions (valence, arousal) in [-1, 1]; after Russell (1980) and AffectNet's category means.
EMOTION_VA: dict[str, tuple[float, float]] = {
    "Surprise": (0.25, 0.80),
    "Fear": (-0.60, 0.65),
    "Disgust": (-0.65, 0.30),
    "Happiness": (0.80, 0.45),
    "Sadness": (-0.70, -0.40),
    "Anger": (-0.55, 0.80),
    "Neutral": (0.00, 0.00),
    "Contempt": (-0.45, 0.20),
}

ACTIONS = ("brow_raise", "brow_inner", "brow_furrow", "eye_open", "mouth_curve", "mouth_open",
           "lip_stretch", "lip_press", "nose_wrinkle", "upper_lip", "cheek_raise", "smirk")

# Facial-action prototype of each emotion (FACS-inspired; 0 = neutral, about +-1 = strong).
PROTOTYPES: dict[str, dict[str, float]] = {
    "Happiness": {"mouth_curve": 1.0, "cheek_raise": 1.0, "eye_open": -0.35, "mouth_open": 0.35, "lip_stretch": 0.3},
    "Sadness": {"brow_inner": 1.0, "mouth_curve": -0.9, "eye_open": -0.3, "lip_press": 0.2},
    "Surprise": {"brow_raise": 1.0, "eye_open": 1.0, "mouth_open": 1.0, "lip_stretch": -0.3},
    "Fear": {"brow_raise": 0.55, "brow_inner": 0.7, "brow_furrow": 0.35, "eye_open": 0.9, "lip_stretch": 1.0,
             "mouth_open": 0.45, "mouth_curve": -0.2},
    "Disgust": {"nose_wrinkle": 1.0, "upper_lip": 1.0, "brow_furrow": 0.45, "eye_open": -0.45,
                "mouth_curve": -0.35, "mouth_open": 0.15},
    "Anger": {"brow_furrow": 1.0, "brow_raise": -0.4, "lip_press": 1.0, "eye_open": 0.15, "mouth_curve": -0.25},
    "Neutral": {},
    "Contempt": {"smirk": 1.0, "eye_open": -0.15},
}

SKIN_TONES = [(255, 224, 196), (241, 194, 160), (224, 172, 130), (198, 134, 90), (160, 104, 66), (110, 70, 44)]
HAIR_COLOURS = [(30, 22, 18), (70, 45, 28), (120, 80, 40), (190, 150, 90), (150, 150, 150), (90, 30, 20)]
IRIS_COLOURS = [(60, 40, 25), (40, 90, 140), (70, 110, 60), (100, 80, 50)]
BACKGROUNDS = [(214, 222, 232), (230, 226, 214), (206, 226, 214), (226, 214, 226), (200, 200, 205)]

SUPERSAMPLE = 4
# Bump when the same seed draws different pixels, so caches keyed on it (and readers of old numbers) can tell.
# 2: darker brows on light hair, Disgust's nostrils/folds/bared teeth, rounder open mouth.
DRAWING_VERSION = 2


@dataclass
class SyntheticFace:
    """One drawn face and everything that is true about it."""

    image: Image.Image
    label: str
    label_index: int
    classes: tuple[str, ...]
    mixture: np.ndarray  # (C,) sums to 1, in `classes` order
    valence: float
    arousal: float
    votes: np.ndarray  # (C,) annotator counts
    seed: int
    occlusion: str | None = None


def _face_rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def derive_seed(seed: int, index: int) -> int:
    """A stable, well-mixed per-face seed for face `index` of a dataset drawn with `seed`."""
    digest = hashlib.blake2b(f"{seed}:{index}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def sample_mixture(rng: np.random.Generator, n_classes: int, ambiguity: float, dominant: int) -> np.ndarray:
    """Dirichlet around `dominant`: ambiguity 0 -> nearly one-hot, 1 -> very mixed."""
    ambiguity = float(np.clip(ambiguity, 0.0, 1.0))
    alpha = np.full(n_classes, 0.03 + 0.9 * ambiguity)
    alpha[dominant] += 1.0 + 14.0 * (1.0 - ambiguity) ** 2
    mixture = rng.dirichlet(alpha)
    return mixture / mixture.sum()


def _actions(mixture: np.ndarray, classes: Sequence[str]) -> dict[str, float]:
    """Mixture-weighted sum of the emotion prototypes."""
    actions = dict.fromkeys(ACTIONS, 0.0)
    for weight, name in zip(mixture, classes, strict=False):
        for action, value in PROTOTYPES[name].items():
            actions[action] += float(weight) * value
    return actions


def _identity(rng: np.random.Generator) -> dict:
    return {
        "skin": np.array(SKIN_TONES[rng.integers(len(SKIN_TONES))]) + rng.integers(-12, 13, 3),
        "hair": HAIR_COLOURS[rng.integers(len(HAIR_COLOURS))],
        "iris": IRIS_COLOURS[rng.integers(len(IRIS_COLOURS))],
        "background": np.array(BACKGROUNDS[rng.integers(len(BACKGROUNDS))]) + rng.integers(-10, 11, 3),
        "head_w": rng.uniform(0.30, 0.36), "head_h": rng.uniform(0.40, 0.46),
        "eye_y": rng.uniform(-0.06, -0.02), "eye_dx": rng.uniform(0.12, 0.145), "eye_size": rng.uniform(0.85, 1.15),
        "mouth_y": rng.uniform(0.20, 0.24), "mouth_w": rng.uniform(0.10, 0.13),
        "hair_style": int(rng.integers(4)), "brow_thick": rng.uniform(0.8, 1.3),
        "nose_len": rng.uniform(0.08, 0.12),
    }


def _colour(rgb) -> tuple[int, int, int]:
    return tuple(int(np.clip(v, 0, 255)) for v in rgb)


def _draw_face(size: int, ident: dict, act: dict[str, float], rng: np.random.Generator) -> Image.Image:
    """Draw one face at SUPERSAMPLE x size; coordinates are fractions of the image, centre (0.5, 0.5)."""
    s = size * SUPERSAMPLE
    image = Image.new("RGB", (s, s), _colour(ident["background"]))
    draw = ImageDraw.Draw(image)
    cx, cy = 0.5, 0.53

    def px(x: float, y: float) -> tuple[float, float]:
        return (x * s, y * s)

    def box(x0, y0, x1, y1):
        return [x0 * s, y0 * s, x1 * s, y1 * s]

    skin, dark_skin = _colour(ident["skin"]), _colour(ident["skin"] * 0.78)
    hw, hh, hair = ident["head_w"], ident["head_h"], ident["hair"]
    line = max(2, int(0.012 * s))

    # Hair behind the head, neck, ears, head.
    if ident["hair_style"] in (1, 3):
        draw.ellipse(box(cx - hw - 0.04, cy - hh - 0.04, cx + hw + 0.04, cy + hh * 0.55), fill=hair)
    draw.rectangle(box(cx - 0.11, cy + hh * 0.7, cx + 0.11, 1.05), fill=dark_skin)
    for side in (-1, 1):
        ex = cx + side * hw
        draw.ellipse(box(ex - 0.035, cy - 0.06, ex + 0.035, cy + 0.07), fill=dark_skin)
    draw.ellipse(box(cx - hw, cy - hh, cx + hw, cy + hh), fill=skin, outline=dark_skin, width=line // 2)
    if ident["hair_style"] != 2:  # fringe / top hair
        draw.chord(box(cx - hw - 0.01, cy - hh - 0.03, cx + hw + 0.01, cy - hh * 0.1), 180, 360, fill=hair)

    # Cheeks raised and flushed (Happiness).
    cheek = max(0.0, act["cheek_raise"])
    if cheek > 0.05:
        flush = _colour(np.array(skin) * (1 - 0.25 * cheek) + np.array([235, 120, 120]) * 0.25 * cheek)
        for side in (-1, 1):
            x, y = cx + side * 0.17, cy + 0.09 - 0.03 * cheek
            r = 0.045 + 0.015 * cheek
            draw.ellipse(box(x - r, y - r * 0.7, x + r, y + r * 0.7), fill=flush)

    # Eyes: openness scales the visible height; squint (negative) narrows them.
    eye_y = cy + ident["eye_y"]
    openness = float(np.clip(1.0 + 0.75 * act["eye_open"], 0.25, 2.0))
    ew, eh = 0.055 * ident["eye_size"], 0.03 * ident["eye_size"] * openness
    for side in (-1, 1):
        ex = cx + side * ident["eye_dx"]
        draw.ellipse(box(ex - ew, eye_y - eh, ex + ew, eye_y + eh), fill=(250, 250, 250), outline=(60, 40, 40),
                     width=line // 2)
        ir = min(eh, 0.026 * ident["eye_size"])
        draw.ellipse(box(ex - ir, eye_y - ir, ex + ir, eye_y + ir), fill=ident["iris"])
        pr = ir * 0.45
        draw.ellipse(box(ex - pr, eye_y - pr, ex + pr, eye_y + pr), fill=(15, 10, 10))

    # Brows: height (raise), inner-corner raise (sadness, fear), furrow (down and together: anger).
    brow_base = eye_y - 0.075
    raise_, inner, furrow = act["brow_raise"], act["brow_inner"], act["brow_furrow"]
    # Brows stay darker than the skin (blond brows on dark skin would hide the expression).
    brow_colour = _colour(np.minimum(np.array(hair) * 0.8, np.array(skin) * 0.45))
    for side in (-1, 1):
        inner_x = cx + side * (0.05 - 0.018 * furrow)
        outer_x = cx + side * (ident["eye_dx"] + 0.07)
        inner_y = brow_base - 0.035 * raise_ - 0.04 * inner + 0.045 * furrow
        outer_y = brow_base - 0.035 * raise_ + 0.012 * inner - 0.01 * furrow
        # Contempt raises one brow a little.
        if side == 1:
            inner_y -= 0.01 * act["smirk"]
            outer_y -= 0.02 * act["smirk"]
        draw.line([px(inner_x, inner_y), px(outer_x, outer_y)], fill=brow_colour,
                  width=int(line * 1.6 * ident["brow_thick"]))
        if furrow > 0.3:  # vertical furrow lines between the brows
            fx = cx + side * 0.02
            draw.line([px(fx, inner_y + 0.005), px(fx, inner_y + 0.035 * furrow)], fill=dark_skin, width=line // 2)

    # Nose; Disgust wrinkles its bridge, flares and lifts the nostrils and deepens the nose-to-mouth folds.
    wrinkle = max(0.0, act["nose_wrinkle"])
    crease = _colour(np.array(skin) * 0.55)
    nose_top, nose_bottom = eye_y + 0.02, eye_y + 0.02 + ident["nose_len"] - 0.012 * wrinkle
    draw.line([px(cx, nose_top), px(cx - 0.02, nose_bottom), px(cx + 0.02, nose_bottom)], fill=dark_skin,
              width=line // 2 + 1)
    if wrinkle > 0.15:
        for k in range(1 + int(wrinkle * 2.5)):
            y = nose_top + 0.01 + 0.013 * k
            draw.arc(box(cx - 0.03, y - 0.008, cx + 0.03, y + 0.01), 200, 340, fill=crease, width=line // 2 + 1)
        flare = 0.008 + 0.008 * wrinkle
        mouth_y = cy + ident["mouth_y"]
        for side in (-1, 1):
            nx = cx + side * 0.028
            draw.ellipse(box(nx - flare, nose_bottom - flare * 0.6, nx + flare, nose_bottom + flare * 0.6),
                         fill=crease)
            draw.line([px(cx + side * 0.045, nose_bottom - 0.005),
                       px(cx + side * (ident["mouth_w"] + 0.03), mouth_y - 0.005)], fill=crease,
                      width=max(1, int(line * 0.7 * wrinkle)))

    _draw_mouth(draw, s, cx, cy + ident["mouth_y"], ident["mouth_w"], act, line, skin)

    # Lighting: a soft gradient from one side.
    image = image.resize((size, size), Image.LANCZOS)
    light = rng.uniform(-0.25, 0.25)
    gradient = np.linspace(1 - light * 0.5, 1 + light * 0.5, size)[None, :, None]
    array = np.asarray(image, dtype=np.float32) * gradient * rng.uniform(0.85, 1.1)
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def _draw_mouth(draw: ImageDraw.ImageDraw, s: int, cx: float, my: float, mw: float, act: dict[str, float],
                line: int, skin) -> None:
    """Mouth from curve (corners up/down), openness, horizontal stretch, pressing, upper-lip raise, smirk."""
    width = mw * (1 + 0.45 * act["lip_stretch"] + 0.15 * max(0.0, act["mouth_curve"]) - 0.25 * act["lip_press"])
    curve = act["mouth_curve"]
    opening = max(0.0, act["mouth_open"]) * 0.07
    upper_raise = max(0.0, act["upper_lip"]) * 0.02
    smirk = act["smirk"]
    lip_colour = (160, 60, 60) if act["lip_press"] < 0.5 else (130, 70, 65)
    n = 24
    xs = np.linspace(-1, 1, n)
    # Corners move up (smile) or down (frown): y offset is -curve * x^2.
    corner = -0.045 * curve * xs ** 2
    tilt = -0.025 * smirk * np.clip(xs, 0, None) ** 2  # one corner up: contempt
    rounded = np.sqrt(1 - xs ** 2)  # an open mouth is round (Surprise's "O"), not a thin lens
    upper = my + corner + tilt - opening * 0.35 * rounded - upper_raise * (1 - xs ** 2) * 1.2
    lower = my + corner + tilt + opening * rounded + 0.004
    xs_px = cx + xs * width
    upper_pts = [(x * s, y * s) for x, y in zip(xs_px, upper, strict=False)]
    lower_pts = [(x * s, y * s) for x, y in zip(xs_px, lower, strict=False)]
    if opening + upper_raise > 0.008:
        draw.polygon(upper_pts + lower_pts[::-1], fill=(70, 20, 30))
        if opening > 0.02 or upper_raise > 0.01:  # upper teeth (a raised upper lip bares them: Disgust)
            teeth = [(x, y + 0.004 * s) for x, y in upper_pts[4:-4]]
            draw.line(teeth, fill=(245, 245, 240), width=max(2, int(line * (1.2 + 30 * upper_raise))))
    lip_width = max(2, int(line * (1.4 - 0.5 * max(0.0, act["lip_press"]))))
    draw.line(upper_pts, fill=lip_colour, width=lip_width, joint="curve")
    draw.line(lower_pts, fill=lip_colour, width=lip_width, joint="curve")


def _occlude(image: Image.Image, occlusion: str, rng: np.random.Generator, skin) -> Image.Image:
    """Draw an occluder over the face (robustness tests)."""
    image = image.copy()
    draw = ImageDraw.Draw(image)
    s = image.size[0]
    if occlusion == "sunglasses":
        y = 0.49 * s
        for side in (-1, 1):
            x = 0.5 * s + side * 0.13 * s
            draw.rounded_rectangle([x - 0.085 * s, y - 0.05 * s, x + 0.085 * s, y + 0.05 * s], radius=0.02 * s,
                                   fill=(20, 20, 25))
        draw.line([(0.45 * s, y), (0.55 * s, y)], fill=(20, 20, 25), width=max(1, s // 60))
    elif occlusion == "mask":
        draw.polygon([(0.22 * s, 0.62 * s), (0.78 * s, 0.62 * s), (0.72 * s, 0.88 * s), (0.28 * s, 0.88 * s)],
                     fill=(150, 200, 230))
    elif occlusion == "hand":
        x, y = rng.uniform(0.3, 0.7) * s, rng.uniform(0.45, 0.8) * s
        w, h = rng.uniform(0.18, 0.26) * s, rng.uniform(0.22, 0.3) * s
        draw.ellipse([x - w, y - h / 2, x + w, y + h / 2], fill=_colour(np.array(skin) * 0.92))
    else:
        raise ValueError(f"unknown occlusion {occlusion!r}; choose from {', '.join(OCCLUSIONS)}")
    return image


def _annotator_votes(rng: np.random.Generator, mixture: np.ndarray, n_annotators: int,
                     temperature: float) -> np.ndarray:
    """votes ~ Multinomial(n, mixture ** (1/T) renormalised); T < 1 sharpens, T > 1 softens."""
    if n_annotators <= 0:
        return np.zeros_like(mixture, dtype=np.int64)
    p = np.power(np.clip(mixture, 1e-12, None), 1.0 / max(temperature, 1e-3))
    return rng.multinomial(n_annotators, p / p.sum()).astype(np.int64)


def generate_face(seed: int, *, size: int = 112, classes: Sequence[str] = RAFDB_BASIC7, ambiguity: float = 0.3,
                  n_annotators: int = 10, annotator_temperature: float = 1.0, occlusion: str | None = None,
                  dominant: str | None = None, va_noise: float = 0.05) -> SyntheticFace:
    """Draw one face from `seed`. Deterministic: the same arguments give the same pixels.

    Args:
        classes: emotion names (from EMOTIONS) that the mixture ranges over, in this order.
        ambiguity: 0 = nearly one emotion, 1 = a wide blend.
        dominant: force the emotion the Dirichlet centres on (default: uniform over classes).
        occlusion: None or one of OCCLUSIONS.
    """
    classes = _check_arguments(seed, size=size, classes=classes, ambiguity=ambiguity, n_annotators=n_annotators,
                               annotator_temperature=annotator_temperature, occlusion=occlusion)
    if dominant is not None and canonical_label(dominant) not in classes:
        raise ValueError(f"dominant emotion {dominant!r} is not one of the classes {list(classes)}")
    rng = _face_rng(seed)
    centre = classes.index(canonical_label(dominant)) if dominant is not None else int(rng.integers(len(classes)))
    mixture = sample_mixture(rng, len(classes), ambiguity, centre)
    label_index = int(np.argmax(mixture))
    va = np.array([EMOTION_VA[c] for c in classes])
    valence, arousal = np.clip(mixture @ va + rng.normal(0, va_noise, 2), -1, 1)
    ident = _identity(rng)
    image = _draw_face(size, ident, _actions(mixture, classes), rng)
    image = _pose_and_noise(image, rng)
    if occlusion:
        image = _occlude(image, occlusion, rng, ident["skin"])
    votes = _annotator_votes(rng, mixture, n_annotators, annotator_temperature)
    return SyntheticFace(image=image, label=classes[label_index], label_index=label_index, classes=classes,
                         mixture=mixture, valence=float(valence), arousal=float(arousal), votes=votes, seed=seed,
                         occlusion=occlusion)


def _check_arguments(seed: int, *, size: int, classes: Sequence[str], ambiguity: float, n_annotators: int,
                     annotator_temperature: float, occlusion: str | None) -> tuple[str, ...]:
    """Refuse bad options with a readable ValueError; returns the classes with canonical names (happy -> Happiness)."""
    if isinstance(classes, str):
        raise ValueError(f"classes must be a list of emotion names, not the string {classes!r}")
    classes = tuple(canonical_label(c) for c in classes)
    unknown = [c for c in classes if c not in PROTOTYPES]
    if unknown or not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be distinct names from {', '.join(EMOTIONS)}; got {list(classes)}")
    if int(seed) < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if size < 16:
        raise ValueError(f"size must be at least 16 pixels, got {size}")
    if not 0 <= ambiguity <= 1:
        raise ValueError(f"ambiguity must be in [0, 1], got {ambiguity}")
    if n_annotators < 0 or annotator_temperature <= 0:
        raise ValueError(f"need n_annotators >= 0 and annotator_temperature > 0, got {n_annotators}, "
                         f"{annotator_temperature}")
    if occlusion and occlusion not in OCCLUSIONS:
        raise ValueError(f"unknown occlusion {occlusion!r}; choose from {', '.join(OCCLUSIONS)}")
    return classes


def _pose_and_noise(image: Image.Image, rng: np.random.Generator) -> Image.Image:
    """Small in-plane rotation and shift, slight blur, pixel noise."""
    size = image.size[0]
    angle = rng.uniform(-8, 8)
    shift = rng.uniform(-0.04, 0.04, 2) * size
    fill = image.getpixel((1, 1))
    image = image.rotate(angle, resample=Image.BILINEAR, translate=tuple(shift), fillcolor=fill)
    if rng.random() < 0.3:
        image = image.filter(ImageFilter.GaussianBlur(radius=rng.uniform(0.2, 0.7)))
    array = np.asarray(image, dtype=np.float32) + rng.normal(0, rng.uniform(1.5, 5.0), (size, size, 3))
    return Image.fromarray(np.clip(array, 0, 255).astype(np.uint8))


def generate_faces(n: int, *, seed: int = 0, **kwargs) -> list[SyntheticFace]:
    """n faces; face i is generate_face(derive_seed(seed, i), **kwargs), so any face can be redrawn alone."""
    return [generate_face(derive_seed(seed, i), **kwargs) for i in range(n)]


def write_dataset(out_dir: str | Path, n: int, *, seed: int = 0, layout: str = "flat", gold_fraction: float = 0.0,
                  **kwargs) -> Path:
    """Write n faces as PNGs plus manifest.csv; returns the manifest path.

    layout "flat": images/<name>.png; "folder": <Class>/<name>.png (SFEW style). The manifest has
    filename (relative to out_dir), label, valence, arousal, is_gold, then p_<Class> (true mixture) and
    votes_<Class> (panel counts). With gold_fraction > 0 the most unambiguous faces are marked gold.
    """
    if layout not in ("flat", "folder"):
        raise ValueError(f"layout must be 'flat' or 'folder', got {layout!r}")
    if n < 0 or not 0 <= gold_fraction <= 1:
        raise ValueError(f"need n >= 0 and gold_fraction in [0, 1], got {n}, {gold_fraction}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    faces = generate_faces(n, seed=seed, **kwargs)
    classes = faces[0].classes if faces else tuple(kwargs.get("classes", RAFDB_BASIC7))
    gold = np.zeros(n, dtype=bool)
    if gold_fraction > 0 and n:
        purity = np.array([f.mixture.max() for f in faces])
        gold[np.argsort(-purity, kind="stable")[: max(1, round(gold_fraction * n))]] = True
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["filename", "label", "valence", "arousal", "is_gold"]
                        + [f"p_{c}" for c in classes] + [f"votes_{c}" for c in classes])
        for i, face in enumerate(faces):
            folder = "images" if layout == "flat" else face.label
            relative = f"{folder}/face_{i:05d}.png"
            (out / folder).mkdir(exist_ok=True)
            face.image.save(out / relative)
            writer.writerow([relative, face.label, f"{face.valence:.4f}", f"{face.arousal:.4f}", int(gold[i])]
                            + [f"{p:.5f}" for p in face.mixture] + [int(v) for v in face.votes])
    return manifest


def contact_sheet(*, classes: Sequence[str] = RAFDB_BASIC7, per_class: int = 8, size: int = 112, seed: int = 0,
                  ambiguity: float = 0.1, occlusion: str | None = None) -> Image.Image:
    """A labelled grid: one row per emotion, `per_class` faces each."""
    label_w = 90
    sheet = Image.new("RGB", (label_w + per_class * size, len(classes) * size), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for row, name in enumerate(classes):
        draw.text((6, row * size + size // 2 - 6), name, fill=(0, 0, 0))
        for col in range(per_class):
            face = generate_face(derive_seed(seed, row * 1000 + col), size=size, classes=classes,
                                 ambiguity=ambiguity, dominant=name, occlusion=occlusion)
            sheet.paste(face.image, (label_w + col * size, row * size))
    return sheet


def get_args_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m ml.data.synthetic", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--out", type=Path, help="output folder for the images and manifest.csv")
    parser.add_argument("--n", type=int, default=200, help="number of faces")
    parser.add_argument("--seed", type=int, default=0, help="dataset seed (face i uses a seed derived from it)")
    parser.add_argument("--size", type=int, default=112, help="image side in pixels")
    parser.add_argument("--layout", choices=("flat", "folder"), default="flat",
                        help="flat: images/ + manifest; folder: one sub-folder per class")
    parser.add_argument("--ambiguity", type=float, default=0.3, help="0 = one clear emotion, 1 = wide blends")
    parser.add_argument("--annotators", type=int, default=10, help="simulated annotators per face")
    parser.add_argument("--temperature", type=float, default=1.0, help="annotator softening temperature")
    parser.add_argument("--occlusion", choices=OCCLUSIONS, default=None, help="draw an occluder on every face")
    parser.add_argument("--contempt", action="store_true", help="use AffectNet-8 classes (adds Contempt)")
    parser.add_argument("--gold-fraction", type=float, default=0.0, help="mark this fraction of clearest faces gold")
    parser.add_argument("--contact-sheet", type=Path, default=None, help="also write a labelled grid PNG here")
    parser.add_argument("--contact-sheet-only", action="store_true", help="write only the contact sheet")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = get_args_parser()
    args = parser.parse_args(argv)
    if args.n < 0 or args.size < 16 or not 0 <= args.ambiguity <= 1 or args.annotators < 0:
        parser.error("--n must be >= 0, --size >= 16, --ambiguity in [0, 1], --annotators >= 0")
    if not 0 <= args.gold_fraction <= 1 or args.temperature <= 0:
        parser.error("--gold-fraction must be in [0, 1] and --temperature > 0")
    if args.contact_sheet_only and not args.contact_sheet:
        parser.error("--contact-sheet-only needs --contact-sheet PATH")
    if not args.contact_sheet_only and args.out is None:
        parser.error("--out is required (or use --contact-sheet-only)")
    if args.contact_sheet and args.contact_sheet.suffix.lower() != ".png":
        parser.error(f"--contact-sheet must name a .png file, got {str(args.contact_sheet)!r}")
    if args.out is not None and args.out.exists() and not args.out.is_dir():
        parser.error(f"--out {str(args.out)!r} exists and is not a folder")
    classes = AFFECTNET8 if args.contempt else RAFDB_BASIC7
    try:
        if args.contact_sheet:
            args.contact_sheet.parent.mkdir(parents=True, exist_ok=True)
            sheet = contact_sheet(classes=classes, size=args.size, seed=args.seed, occlusion=args.occlusion)
            # 128 colours without dithering keep the PNG small (the README's sheet stays < 300 KB)
            sheet.quantize(colors=128, dither=Image.Dither.NONE).save(args.contact_sheet, optimize=True)
            print(f"contact sheet: {args.contact_sheet}")
        if not args.contact_sheet_only:
            manifest = write_dataset(args.out, args.n, seed=args.seed, layout=args.layout, size=args.size,
                                     classes=classes, ambiguity=args.ambiguity, n_annotators=args.annotators,
                                     annotator_temperature=args.temperature, occlusion=args.occlusion,
                                     gold_fraction=args.gold_fraction)
            print(f"{args.n} faces written; manifest: {manifest}")
    except OSError as exc:  # unwritable or missing parent folder, disk full: a message, not a traceback
        parser.error(f"cannot write output: {exc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
