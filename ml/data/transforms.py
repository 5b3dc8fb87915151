"""Image preprocessing as the official ULDL code does it (ULDL ref §2.2-2.4), on PIL images.

Training (anchor): bilinear resize to `image_size` -> horizontal flip (p=0.5) -> zero-pad by `pad` and
random crop back -> random erasing in 0..255 space (p=0.5, uniform fill) -> scale to [-1, 1].
Neighbour views drop the random erasing (ref §2.3). Test: resize -> scale (the reference pads and
centre-crops, which cancel exactly, ref §2.4).

Reference input sizes (ref §2.2): ResNet-18 at 224 px with pad 8, ResNet-50 at 112 px with pad 4; other
sizes keep the same ratio, pad = round(size * 8 / 224). Randomness comes from torch's global generator,
so `torch.manual_seed` and DataLoader worker seeding make it reproducible.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from PIL import Image

__all__ = ["NORMALIZATION", "REFERENCE_SIZES", "default_pad", "random_erasing_", "FERTransform", "build_transform"]

# ULDL ref §2.2: (x - 127.5) / 127.5, i.e. mean 0.5 and std 0.5 on [0, 1] pixels; stored in checkpoints.
NORMALIZATION: dict[str, list[float]] = {"mean": [0.5, 0.5, 0.5], "std": [0.5, 0.5, 0.5]}
# ULDL ref §2.2: input size -> pad of the reference configs.
REFERENCE_SIZES: dict[int, int] = {224: 8, 112: 4}


def default_pad(image_size: int) -> int:
    """The reference's pad for its sizes (224 -> 8, 112 -> 4), the same ratio otherwise (at least 1)."""
    return REFERENCE_SIZES.get(image_size, max(1, round(image_size * 8 / 224)))


def random_erasing_(x: torch.Tensor, p: float = 0.5, area: tuple[float, float] = (0.02, 0.3),
                    ratio: tuple[float, float] = (0.3, 1 / 0.3)) -> torch.Tensor:
    """Random erasing of the reference (ref §2.3 step 5), in place on a (3, H, W) float tensor in 0..255.

    Not torchvision's RandomErasing: the aspect ratio is drawn uniformly (not log-uniformly) and the box is
    filled with independent U[0, 255) values per pixel and channel.
    """
    if float(torch.rand(())) > p:  # ref: skipped when u > 0.5
        return x
    _, height, width = x.shape
    while True:  # ref §2.3: redraw while the box does not fit
        target = float(torch.empty(()).uniform_(*area)) * height * width
        r = float(torch.empty(()).uniform_(*ratio))
        h, w = int(round(math.sqrt(target * r))), int(round(math.sqrt(target / r)))
        if 0 < h <= height and 0 < w <= width:
            break
    top = int(torch.randint(0, height - h, ())) if h < height else 0
    left = int(torch.randint(0, width - w, ())) if w < width else 0
    x[:, top:top + h, left:left + w] = torch.rand(3, h, w) * 255.0
    return x


class FERTransform:
    """PIL image -> normalised (3, S, S) float tensor, the reference pipeline for training or test."""

    def __init__(self, image_size: int, *, train: bool, erasing: bool | None = None, pad: int | None = None,
                 normalization: dict | None = None):
        if image_size < 8:
            raise ValueError(f"image_size must be at least 8, got {image_size}")
        self.image_size = int(image_size)
        self.train = bool(train)
        self.erasing = self.train if erasing is None else bool(erasing) and self.train
        self.pad = default_pad(self.image_size) if pad is None else int(pad)
        norm = normalization or NORMALIZATION
        self.normalization = {"mean": [float(v) for v in norm["mean"]], "std": [float(v) for v in norm["std"]]}
        self._mean = torch.tensor(self.normalization["mean"]).view(3, 1, 1) * 255.0
        self._std = torch.tensor(self.normalization["std"]).view(3, 1, 1) * 255.0

    def resize(self, image: Image.Image) -> Image.Image:
        """Bilinear resize of the whole image to the input size (ref §2.2 step 1)."""
        image = image.convert("RGB")
        size = (self.image_size, self.image_size)
        return image if image.size == size else image.resize(size, Image.BILINEAR)

    def __call__(self, image: Image.Image) -> torch.Tensor:
        arr = np.asarray(self.resize(image), dtype=np.uint8)
        x = torch.from_numpy(arr.copy()).permute(2, 0, 1).float()  # (3, S, S) in 0..255
        if self.train:
            if float(torch.rand(())) < 0.5:  # ref §2.3 step 2
                x = x.flip(2)
            x = self._pad_and_crop(x)
            if self.erasing:
                random_erasing_(x)
        return (x - self._mean) / self._std  # ref §2.2: scaling comes last

    def _pad_and_crop(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad by `pad` on every side, crop back at a uniform offset in {0..2*pad} (ref §2.3 steps 3-4)."""
        if self.pad <= 0:
            return x
        s, p = self.image_size, self.pad
        dy, dx = (int(v) for v in torch.randint(0, 2 * p + 1, (2,)))
        out = torch.zeros_like(x)  # pad value 0 in pixel space (-1 after scaling)
        # Crop window [dy, dy+s) of the padded image covers source rows [dy-p, dy-p+s).
        sy, sx = dy - p, dx - p
        src_y0, src_x0 = max(0, sy), max(0, sx)
        src_y1, src_x1 = min(s, sy + s), min(s, sx + s)
        out[:, src_y0 - sy:src_y1 - sy, src_x0 - sx:src_x1 - sx] = x[:, src_y0:src_y1, src_x0:src_x1]
        return out

    def __repr__(self) -> str:
        return (f"FERTransform(image_size={self.image_size}, train={self.train}, erasing={self.erasing}, "
                f"pad={self.pad})")


def build_transform(image_size: int, *, train: bool, erasing: bool | None = None, pad: int | None = None,
                    normalization: dict | None = None) -> FERTransform:
    """The training (augmenting) or test transform; `erasing=False` gives the neighbour view (ref §2.3)."""
    return FERTransform(image_size, train=train, erasing=erasing, pad=pad, normalization=normalization)
