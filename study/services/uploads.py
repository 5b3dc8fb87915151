"""Big uploads: stored as they came in the request, imported by a worker with progress and a final report.

A request that imported thousands of images itself ran into the web server's timeout (and left half an
import without a report). Above STIMULUS_INLINE_MAX_BYTES the view only stores the upload (one zip: the
files as sent, zips expanded later) and returns at once; the task runs the same import as
import_stimuli, writing progress every few files, and ends with the per-file report.

Studies that detect and crop faces on import (Study.face_crop) send every upload here, however small: the
detector runs only in a worker. The batch then also counts faces found and photos without one, writes its
progress after every photo, and its report lists every face (with its box) as well as the problems.
"""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

from django.conf import settings
from django.core.files import File
from django.db import transaction
from django.utils import timezone

from study.errors import BrokerUnavailable, FaceDetectionUnavailable, InvalidInput
from study.jobs import IMPORT_UPLOAD_BATCH, broker_check, enqueue_upload_batch, ids_not_waiting
from study.models import Study, UploadBatch
from study.services.face_imports import FaceCropper, face_importer
from study.services.stimuli import DUPLICATE, IMPORTED, REJECTED, ImportResult, stimuli_import_archive

REPORT_LIMIT = 5000  # rows kept in the report per result (rejected, duplicate, ...); the counts cover every file
PROGRESS_EVERY = 25
UNFINISHED = (UploadBatch.State.QUEUED, UploadBatch.State.RUNNING)


def upload_is_big(files) -> bool:
    """Whether an upload goes to a worker (over STIMULUS_INLINE_MAX_BYTES in all) or is imported at once."""
    return sum(getattr(f, "size", 0) or 0 for f in files) > settings.STIMULUS_INLINE_MAX_BYTES


def upload_needs_worker(*, study: Study, files) -> bool:
    """Big uploads, and every upload to a study that crops faces (the detector runs only in a worker)."""
    return study.face_crop != Study.FaceCrop.OFF or upload_is_big(files)


def stimulus_upload_enqueue(*, study: Study, files, manifest=None, user=None,
                            keep_faceless: bool = False) -> UploadBatch:
    """Store the uploaded files as one zip (a single zip is stored as is) and queue its import.

    With the study's face cropping on, the batch crops faces; `keep_faceless` imports photos with no face whole.
    """
    files = list(files)
    if not files:
        raise InvalidInput("choose at least one file")
    broker_check()  # a queued import needs a worker: with the broker down, refuse (503) before storing
    with ExitStack() as stack:
        if len(files) == 1 and files[0].name.lower().endswith(".zip"):
            handle, name = files[0], files[0].name
        else:
            handle = stack.enter_context(tempfile.TemporaryFile())
            with zipfile.ZipFile(handle, "w", compression=zipfile.ZIP_STORED) as bundle:
                for upload in files:
                    with bundle.open(Path(upload.name).name, "w", force_zip64=True) as member:
                        for chunk in upload.chunks():
                            member.write(chunk)
            handle.seek(0)
            name = f"{len(files)} files"
        with transaction.atomic():
            face_crop = "" if study.face_crop == Study.FaceCrop.OFF else study.face_crop
            batch = UploadBatch(study=study, created_by=user, original_name=name[:255],
                                size_bytes=sum(f.size for f in files), face_crop=face_crop,
                                keep_faceless=bool(keep_faceless and face_crop))
            batch.archive.save("upload.zip", File(handle), save=False)
            if manifest is not None:
                batch.manifest.save("manifest.csv", File(manifest), save=False)
            batch.save()
            transaction.on_commit(lambda: _enqueue(batch.pk))
    return batch


def _enqueue(batch_id: int) -> None:
    try:
        enqueue_upload_batch(batch_id)
    except Exception as exc:  # kombu raises transport-specific errors
        batch = UploadBatch.objects.filter(pk=batch_id).first()
        if batch is not None:
            _remove_files(batch)
            batch.delete()
        raise BrokerUnavailable(f"the upload could not be queued ({exc.__class__.__name__}); nothing was stored") from None


def upload_batches_requeue_unfinished() -> list[int]:
    """Queue again every import that is queued or running; for a broker that never redelivers.

    The embedded default's filesystem broker drops the message of a task whose worker stopped (and of tasks the
    worker had fetched but not started), which would leave the batch 'Importing' for ever. An import is idempotent
    (files already imported come back as duplicates), so on start-up the embedded runner queues again every
    unfinished one whose message is not still waiting in the broker's folder, as it does prediction jobs. Should the
    same import still run twice, whichever run ends first writes the result (see upload_batch_run).
    """
    ids = ids_not_waiting(IMPORT_UPLOAD_BATCH,
                          UploadBatch.objects.filter(state__in=UNFINISHED).order_by("pk").values_list("pk", flat=True))
    for batch_id in ids:
        enqueue_upload_batch(batch_id)
    return ids


def _claim(batch_id: int) -> UploadBatch | None:
    with transaction.atomic():
        batch = UploadBatch.objects.select_for_update().filter(pk=batch_id).first()
        if batch is None or batch.state not in UNFINISHED:
            return None  # a redelivered message for a finished import
        if batch.state == UploadBatch.State.RUNNING:  # a stopped worker left it half done: start again, and say so
            batch.restarts += 1
        batch.state, batch.started_at = UploadBatch.State.RUNNING, timezone.now()
        batch.save(update_fields=["state", "started_at", "restarts"])
        return batch


def _reported(result: ImportResult) -> bool:
    """Report rows: every problem, and with face cropping every face and every photo without one."""
    return result.status != IMPORTED or result.face is not None or result.faceless


class ReportRows(list):
    """The report's [name, status, reason] rows, at most REPORT_LIMIT of each status, in file order.

    A cap per status, not in all: after a restart every file imported before comes back as a duplicate, and a
    single cap filled with those would leave out the rejections that come later in the archive.
    """

    def __init__(self):
        super().__init__()
        self.per_status: dict[str, int] = {}
        self.left_out: dict[str, int] = {}  # rows past the cap, per status: the page says how many it left out

    def add(self, result: ImportResult) -> None:
        if not _reported(result):
            return
        if self.per_status.get(result.status, 0) >= REPORT_LIMIT:
            self.left_out[result.status] = self.left_out.get(result.status, 0) + 1
            return
        self.per_status[result.status] = self.per_status.get(result.status, 0) + 1
        self.append([result.name, result.status, result.reason])


def upload_batch_run(*, batch_id: int, face_cropper: Callable[[str], FaceCropper] | None = None) -> None:
    """Import a stored upload (worker side). Idempotent: files already imported come back as duplicates.

    `face_cropper(mode)` builds the detector for a batch that crops faces (study.tasks passes ml.faces'); it is
    called only for such batches, so other imports never load torch.
    """
    batch = _claim(batch_id)
    if batch is None:
        return
    counts = {IMPORTED: 0, DUPLICATE: 0, REJECTED: 0}
    faces = {"faces": 0, "faceless": 0}
    report = ReportRows()
    every = 1 if batch.face_crop else PROGRESS_EVERY  # a photo takes the detector ~0.2-1 s: show each one

    def progress(result: ImportResult, done: int, total: int) -> None:
        counts[result.status] = counts.get(result.status, 0) + 1
        faces["faces"] += result.face is not None
        faces["faceless"] += result.faceless
        report.add(result)
        if done % every == 0 or done == total:
            UploadBatch.objects.filter(pk=batch.pk, state=UploadBatch.State.RUNNING).update(
                done=done, total=total, imported=counts[IMPORTED], duplicates=counts[DUPLICATE],
                rejected=counts[REJECTED], **faces)

    try:
        importer = None
        if batch.face_crop:
            if face_cropper is None:
                raise FaceDetectionUnavailable("this upload crops faces but the worker has no face detector")
            importer = face_importer(cropper=face_cropper(batch.face_crop), keep_faceless=batch.keep_faceless)
        with ExitStack() as stack:
            path = _local_copy(batch.archive, stack)
            manifest = _local_copy(batch.manifest, stack) if batch.manifest else None
            result = stimuli_import_archive(study=batch.study, path=path, manifest=manifest,
                                            source=batch.original_name or "upload", progress=progress,
                                            importer=importer)
        # The final report also has what came without a progress call (manifest rows naming missing files).
        state, error = UploadBatch.State.DONE, ""
        final = result.counts()
        counts = {IMPORTED: final.get(IMPORTED, 0), DUPLICATE: final.get(DUPLICATE, 0),
                  REJECTED: final.get(REJECTED, 0)}
        found, _photos, faceless = result.face_counts()
        faces = {"faces": found, "faceless": faceless}
        report = ReportRows()
        for row in result.results:
            report.add(row)
    except Exception as exc:  # an unreadable archive (InvalidArchive), no detector, anything else: say so on the page
        state, error = UploadBatch.State.FAILED, getattr(exc, "message", None) or exc.__class__.__name__
    # Only a run that finds the batch still running writes the result: when the same import ran twice (a message
    # that survived a restart beside the one queued again), the later run would otherwise overwrite the first's
    # report, or fail on the upload the first one removed.
    finished = UploadBatch.objects.filter(pk=batch.pk, state=UploadBatch.State.RUNNING).update(
        state=state, error=error[:2000], report=list(report), report_left_out=report.left_out,
        imported=counts[IMPORTED], duplicates=counts[DUPLICATE], rejected=counts[REJECTED], finished_at=timezone.now(),
        **faces)
    if finished:
        batch.refresh_from_db()
        _remove_files(batch)


def _local_copy(field, stack: ExitStack) -> Path:
    try:
        return Path(field.path)
    except NotImplementedError:  # object storage: work on a temporary local copy
        target = stack.enter_context(tempfile.NamedTemporaryFile(suffix=Path(field.name).suffix))
        with field.open("rb") as source:
            shutil.copyfileobj(source, target, 1 << 20)
        target.flush()
        return Path(target.name)


def _remove_files(batch: UploadBatch) -> None:
    for field in (batch.archive, batch.manifest):
        if field and field.name:
            field.storage.delete(field.name)
    UploadBatch.objects.filter(pk=batch.pk).update(archive="", manifest="")
