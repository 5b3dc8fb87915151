"""Photos and malformed uploads for the demo tests, all generated in code (the astronaut is public domain)."""
from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image


def astronaut() -> Image.Image:
    from skimage import data

    return Image.fromarray(data.astronaut())


def encode(image: Image.Image, fmt: str = "JPEG", **kw) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kw)
    return buffer.getvalue()


def three_faces_640x480() -> Image.Image:
    """Three astronaut faces on a 640x480 canvas (the benchmark's photo)."""
    face = astronaut().crop((130, 20, 320, 230)).resize((190, 210))
    canvas = Image.new("RGB", (640, 480), (90, 110, 130))
    variants = [face, face.transpose(Image.FLIP_LEFT_RIGHT), face.point(lambda v: int(v * 0.8))]
    for x, variant in zip((20, 225, 430), variants, strict=True):  # three different crops, so three distinct donations
        canvas.paste(variant, (x, 130))
    return canvas


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that claims width x height (a decompression bomb's header) with a tiny compressed body."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    row = b"\x00" + b"\x00" * 16
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(row))
            + _png_chunk(b"IEND", b""))


def exif_rotated_jpeg() -> bytes:
    """The astronaut stored sideways with EXIF orientation 6 (rotate 90° clockwise to view), plus GPS."""
    image = astronaut().transpose(Image.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (51.0, 30.0, 0.0)}  # GPS IFD: latitude
    return encode(image, "JPEG", exif=exif.tobytes())


def animated_gif() -> bytes:
    frames = [astronaut().resize((256, 256)), Image.new("RGB", (256, 256), (255, 0, 0))]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    return buffer.getvalue()


def cmyk_jpeg() -> bytes:
    return encode(astronaut().convert("CMYK"), "JPEG")


def png16() -> bytes:
    gray = np.asarray(astronaut().convert("L"), dtype=np.uint16) * 257
    return encode(Image.fromarray(gray), "PNG")
