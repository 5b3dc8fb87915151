"""Uncropped photos for the face-cropping import tests, made in code from scikit-image's astronaut (public domain)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from tests.files import make_zip
from tests.study.demo_photos import astronaut, encode

# Eileen Collins' face in astronaut() (512 x 512): centre by eye, as in tests/ml/test_faces.py.
FACE_CENTRE = (224, 116)


def collage_3x2() -> Image.Image:
    """3 x 2 astronauts (the middle column mirrored), 1536 x 1024: six faces, as tests/ml/test_faces.py builds."""
    tile = np.asarray(astronaut())
    return Image.fromarray(np.concatenate([np.concatenate([tile, tile[:, ::-1], tile], axis=1)] * 2, axis=0))


def collage_centres() -> list[tuple[int, int]]:
    """The six face centres of collage_3x2 in reading order (rows top to bottom, each left to right)."""
    columns = (FACE_CENTRE[0], 1024 - FACE_CENTRE[0], 1024 + FACE_CENTRE[0])
    return [(x, FACE_CENTRE[1] + 512 * row) for row in (0, 1) for x in columns]


def pair() -> Image.Image:
    """Two half-size astronauts side by side (the second mirrored), 512 x 256: two faces, quick to search."""
    tile = astronaut().resize((256, 256))
    canvas = Image.new("RGB", (512, 256))
    canvas.paste(tile, (0, 0))
    canvas.paste(tile.transpose(Image.FLIP_LEFT_RIGHT), (256, 0))
    return canvas


def blank() -> Image.Image:
    return Image.new("RGB", (320, 240), (200, 200, 200))


def photos_zip(manifest: str | None = None) -> bytes:
    """photos/astronaut.jpg (1 face), photos/group.jpg (6 faces), photos/wall.png (none), optional manifest.csv."""
    members = {"photos/astronaut.jpg": encode(astronaut(), quality=92),
               "photos/group.jpg": encode(collage_3x2(), quality=90),
               "photos/wall.png": encode(blank(), "PNG")}
    if manifest is not None:
        members["photos/manifest.csv"] = manifest
    return make_zip(members)
