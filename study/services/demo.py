"""The public demo page's writes: accept a photo, hand it to a worker, keep the result briefly, forget it.

Privacy by construction: only the decoded pixels are stored (.npy, so no EXIF, GPS included, survives),
under MEDIA_ROOT/demo/tmp only until the task ends (success or failure), and the
result row expires (DEMO_RESULT_TTL seconds; `purge_demo_uploads` and its periodic task delete it).
A visitor who ticks "donate" gives the face crops, stored with the consent text and time, to the
"Demo donations" pool that researchers can import into a study.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import logging
import uuid
import warnings
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.conf import settings
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.utils import timezone
from PIL import Image, ImageOps, UnidentifiedImageError

from study import jobs
from study.errors import BrokerUnavailable, InvalidInput, NotFound, PayloadTooLarge, RateLimited, UnsupportedImage
from study.models import DemoDonation, DemoUpload, Study

logger = logging.getLogger(__name__)

MAX_BYTES = getattr(settings, "DEMO_MAX_BYTES", 10 * 1024 * 1024)
MAX_PIXELS = getattr(settings, "DEMO_MAX_PIXELS", 40_000_000)
MAX_SIDE = getattr(settings, "DEMO_MAX_SIDE", 12_000)
UPLOADS_PER_MINUTE = getattr(settings, "DEMO_UPLOADS_PER_MINUTE", 10)
RESULT_TTL = timedelta(seconds=getattr(settings, "DEMO_RESULT_TTL", 3600))
FORMATS = {"JPEG", "PNG", "WEBP", "GIF", "BMP"}
STORE_SIDE = 2048  # the worker never needs more than this; larger photos are scaled down before storing
DONATION_CONSENT = (
    "I donate the face crops of this photo to research. I confirm that I may share this photo and that the "
    "people in it agreed. The crops (not the full photo) may be shown to study participants and researchers; "
    "EmoStudy keeps this consent text and the time I gave it with each crop."
)


def client_key(remote_addr: str) -> str:
    """A keyed hash of the client address: enough to rate-limit, never the address itself."""
    return hmac.new(settings.SECRET_KEY.encode(), (remote_addr or "unknown").encode(), hashlib.sha256).hexdigest()[:32]


def photo_decode(data: bytes) -> Image.Image:
    """Sniff and decode with Pillow (the file name and content type are ignored); RGB, EXIF-rotated.

    Raises UnsupportedImage (415) for anything Pillow cannot read as a photo format we accept,
    PayloadTooLarge (413) for too many bytes or pixels (decompression bombs included).
    """
    if not data:
        raise InvalidInput("the file is empty")
    if len(data) > MAX_BYTES:
        raise PayloadTooLarge(f"the file is {len(data) / 1e6:.1f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            with Image.open(io.BytesIO(data)) as probe:
                fmt, (width, height) = probe.format, probe.size
                if fmt not in FORMATS:
                    raise UnsupportedImage(f"{fmt} images are not accepted; send a JPEG, PNG, WebP, GIF or BMP photo")
                if width * height > MAX_PIXELS or max(width, height) > MAX_SIDE:
                    raise PayloadTooLarge(f"the image is {width}x{height} pixels; the limit is "
                                          f"{MAX_PIXELS / 1e6:.0f} megapixels and {MAX_SIDE} pixels a side")
                probe.seek(0)  # animated GIF/WebP: the first frame
                probe.load()
                image = ImageOps.exif_transpose(probe)
                if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):  # 16-bit/float grayscale: scale to 8 bits
                    arr = np.asarray(image, dtype=np.float64)
                    span = float(arr.max() - arr.min()) or 1.0
                    image = Image.fromarray(((arr - arr.min()) / span * 255).astype("uint8"))
                # pixels only: a fresh image carries no metadata (EXIF, GPS, ICC, comments) from the upload
                image = Image.frombytes("RGB", image.size, image.convert("RGB").tobytes())
        except (UnsupportedImage, PayloadTooLarge):
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise PayloadTooLarge("the image decompresses to too many pixels") from None
        except UnidentifiedImageError:
            raise UnsupportedImage("this file is not an image we can read (JPEG, PNG, WebP, GIF or BMP expected)") from None
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise InvalidInput(f"the image is damaged or truncated ({exc.__class__.__name__})") from None
    if image.width < 8 or image.height < 8:
        raise InvalidInput(f"the image is only {image.width}x{image.height} pixels")
    return image


def _temp_dir() -> Path:
    path = Path(settings.MEDIA_ROOT) / "demo" / "tmp"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _rate_check(key: str) -> None:
    since = timezone.now() - timedelta(seconds=60)
    if DemoUpload.objects.filter(client_key=key, created_at__gte=since).count() >= UPLOADS_PER_MINUTE:
        raise RateLimited(f"too many photos: at most {UPLOADS_PER_MINUTE} a minute. Wait a minute and try again.")


def demo_upload_create(*, data: bytes, client: str, donate: bool = False, whole_image: bool = False,
                       enqueue: Callable[[int], None] | None = None) -> DemoUpload:
    """Validate, store the pixels (PNG, no metadata) temporarily and queue the analysis."""
    _rate_check(client)
    image = photo_decode(data)
    if max(image.size) > STORE_SIDE:
        image.thumbnail((STORE_SIDE, STORE_SIDE), Image.BILINEAR)
    jobs.broker_check()  # broker down: 503 before anything touches the disk
    # raw pixels (.npy, read back without pickle): lossless, no metadata, and an order of magnitude faster
    # to write and read than PNG; the file lives only until the task ends
    path = _temp_dir() / f"{uuid.uuid4().hex}.npy"
    np.save(path, np.asarray(image, dtype=np.uint8), allow_pickle=False)
    try:
        with transaction.atomic():
            upload = DemoUpload.objects.create(
                temp_path=str(path.relative_to(settings.MEDIA_ROOT)), client_key=client, donate=donate,
                consent_text=DONATION_CONSENT if donate else "", whole_image=whole_image,
                expires_at=timezone.now() + RESULT_TTL)
            transaction.on_commit(lambda: _enqueue(upload.pk, enqueue))
    except BaseException:
        path.unlink(missing_ok=True)
        DemoUpload.objects.filter(temp_path=str(path.relative_to(settings.MEDIA_ROOT))).delete()
        raise
    return upload


def _enqueue(upload_id: int, enqueue: Callable[[int], None] | None) -> None:
    try:
        (enqueue or jobs.enqueue_demo_upload)(upload_id)
    except Exception as exc:  # kombu raises transport-specific errors
        upload = DemoUpload.objects.filter(pk=upload_id).first()
        if upload is not None:
            _remove_temp(upload)
            upload.delete()
        raise BrokerUnavailable(f"the analysis could not be queued ({exc.__class__.__name__}); nothing was kept. "
                                "Try again in a minute.") from None


def _remove_temp(upload: DemoUpload) -> None:
    if upload.temp_path:
        (Path(settings.MEDIA_ROOT) / upload.temp_path).unlink(missing_ok=True)


def demo_upload_get(*, public_id) -> DemoUpload:
    upload = DemoUpload.objects.filter(public_id=public_id, expires_at__gt=timezone.now()).first()
    if upload is None:
        raise NotFound("no such demo result (results are deleted after an hour)")
    return upload


def demo_upload_run(*, upload_id: int, analyse: Callable[[Image.Image, bool], tuple[dict, list]]) -> None:
    """Worker side: run `analyse(image, whole_image) -> (result, crops)`; the file is gone afterwards."""
    upload = DemoUpload.objects.filter(pk=upload_id).first()
    if upload is None:
        return
    if upload.state in (DemoUpload.State.DONE, DemoUpload.State.FAILED):
        _remove_temp(upload)
        return
    DemoUpload.objects.filter(pk=upload_id).update(state=DemoUpload.State.RUNNING)
    try:
        pixels = np.load(Path(settings.MEDIA_ROOT) / upload.temp_path, allow_pickle=False)
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ValueError(f"unexpected stored pixels {pixels.dtype} {pixels.shape}")
        image = Image.fromarray(pixels, "RGB")
        result, crops = analyse(image, upload.whole_image)
        if upload.donate and crops:
            result["donated"] = _donate(upload, result, crops)
        DemoUpload.objects.filter(pk=upload_id).update(state=DemoUpload.State.DONE, result=result,
                                                       finished_at=timezone.now(), temp_path="")
    except Exception as exc:
        logger.exception("demo upload %s failed", upload.public_id)
        DemoUpload.objects.filter(pk=upload_id).update(
            state=DemoUpload.State.FAILED, finished_at=timezone.now(), temp_path="",
            error=f"the analysis failed ({exc.__class__.__name__}); please try another photo"[:500])
    finally:
        _remove_temp(upload)


def _donate(upload: DemoUpload, result: dict, crops: list[Image.Image]) -> int:
    now = timezone.now()
    count = 0
    for face, crop in zip(result["faces"], crops, strict=True):
        buffer = io.BytesIO()
        crop.convert("RGB").save(buffer, format="PNG")
        data = buffer.getvalue()
        sha = hashlib.sha256(data).hexdigest()
        if DemoDonation.objects.filter(sha256=sha).exists():  # the same crop donated before
            continue
        donation = DemoDonation(sha256=sha, width=crop.width, height=crop.height, consent_text=upload.consent_text,
                                consented_at=upload.created_at or now,
                                source_upload=upload.public_id, face_number=face["number"], box=face["box"])
        donation.image.save(f"{sha}.png", ContentFile(data), save=False)
        try:
            with transaction.atomic():
                donation.save()
            count += 1
        except IntegrityError:  # the same crop donated concurrently
            donation.image.storage.delete(donation.image.name)
    return count


def demo_uploads_purge(*, now=None) -> dict:
    """Delete expired results and any temporary file no running upload owns (a killed worker's leftovers)."""
    now = now or timezone.now()
    expired = DemoUpload.objects.filter(expires_at__lte=now)
    for upload in expired:
        _remove_temp(upload)
    deleted, _ = expired.delete()
    owned = set(DemoUpload.objects.exclude(temp_path="").values_list("temp_path", flat=True))
    stray = 0
    for path in _temp_dir().iterdir():
        rel = str(path.relative_to(settings.MEDIA_ROOT))
        if rel not in owned and path.stat().st_mtime < (now - timedelta(minutes=10)).timestamp():
            path.unlink(missing_ok=True)
            stray += 1
    return {"expired": deleted, "stray_files": stray}


def demo_donations_import(*, study: Study, donations) -> dict:
    """Copy donated crops into a study as stimuli (source 'demo donation'); returns counts by status."""
    from study.services.stimuli import stimulus_import_file

    counts: dict[str, int] = {}
    for donation in donations:
        with donation.image.open("rb") as fh:
            data = fh.read()
        outcome = stimulus_import_file(study=study, name=f"donation_{donation.pk}.png", data=data,
                                       source=f"demo donation {donation.consented_at:%Y-%m-%d}")
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
        if outcome.ok:
            donation.imported_into.add(study)
    return counts
