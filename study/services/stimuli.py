"""Stimuli: import images one by one, from a folder, a zip or a web upload, with an optional CSV manifest.

Every file is checked with Pillow (JPEG, PNG or WebP only; empty, truncated, corrupt, animated and
oversized images are rejected), stored content-addressed by sha256 and deduplicated per study. Each
file gets its own transaction, so one bad file never stops the rest and never leaves half an import
behind: if the row cannot be inserted, the stored file is removed again.

Manifest (CSV, UTF-8, header row): filename,label,valence,arousal,is_gold. The same manifest rules
serve the command line (import_stimuli), the web upload and background upload jobs: a manifest.csv
inside a zip or folder is used unless a separate manifest is given, and the report names it. Only `filename` is required;
other columns (e.g. the synthetic generator's p_<Class> and votes_<Class>) are ignored. A filename
matches a file by its relative path, by any trailing part of it, or by its base name.

How one file becomes stimuli is pluggable (`importer`): by default the file itself (stimulus_import_file);
for studies that detect and crop faces, study.services.face_imports turns each face of a photo into one.
"""
from __future__ import annotations

import csv
import hashlib
import io
import math
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path, PurePosixPath
from typing import BinaryIO, Protocol

from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from PIL import Image

from ml.labels import canonical_label
from study.errors import InvalidArchive
from study.models import Stimulus, Study

IMPORTED, DUPLICATE, REJECTED = "imported", "duplicate", "rejected"
NO_FACE = "no face"  # face cropping found no face in a photo, so nothing was imported from it
ALLOWED_FORMATS = {"JPEG": "jpg", "PNG": "png", "WEBP": "webp"}
MAX_IMAGE_BYTES = 20 * 1024 * 1024
MAX_IMAGE_PIXELS = 40_000_000  # ~6300 x 6300; far beyond any face stimulus, far below a decompression bomb
MAX_ARCHIVE_MEMBERS = 50_000
MAX_MANIFEST_BYTES = 10 * 1024 * 1024
# More rows than any import can use (a zip holds at most MAX_ARCHIVE_MEMBERS files); parsing stops there, so
# a manifest of a million short rows costs neither minutes nor hundreds of MB.
MAX_MANIFEST_ROWS = 4 * MAX_ARCHIVE_MEMBERS
MANIFEST_NAME = "manifest.csv"
FILENAME_ALIASES = ("file", "path", "image", "file_name")  # accepted for the `filename` column
_TRUE = {"1", "true", "yes", "y", "t", "gold"}
_FALSE = {"", "0", "false", "no", "n", "f"}


@dataclass(frozen=True)
class ImportResult:
    """What happened to one file (or to one manifest row naming a file that was not there)."""

    name: str
    status: str  # imported | duplicate | rejected | no face
    reason: str = ""
    stimulus: Stimulus | None = None
    face: dict | None = None  # face cropping: the face's metadata (source photo, box, score, index)
    faceless: bool = False  # face cropping: a photo in which no face was found (imported whole, or not at all)

    @property
    def ok(self) -> bool:
        return self.status != REJECTED


@dataclass
class ImportReport:
    results: list[ImportResult] = field(default_factory=list)
    manifest_source: str = ""  # which manifest was used ("" when none), e.g. "manifest.csv in faces.zip"
    manifest_rows: int = 0
    manifest_matched: int = 0  # rows that named a file of the import

    def counts(self) -> dict[str, int]:
        counted = Counter(result.status for result in self.results)
        return {status: counted.get(status, 0) for status in (IMPORTED, DUPLICATE, REJECTED)}

    def face_counts(self) -> tuple[int, int, int]:
        """Face cropping: (faces found, photos they came from, photos with no face)."""
        faces = [result for result in self.results if result.face is not None]
        photos = {result.face.get("source_photo") for result in faces}
        return len(faces), len(photos), sum(result.faceless for result in self.results)

    def summary(self) -> str:
        counts = self.counts()
        text = f"{counts[IMPORTED]} imported, {counts[DUPLICATE]} duplicate, {counts[REJECTED]} rejected"
        faces, photos, faceless = self.face_counts()
        if faces or faceless:
            text += f"; {faces_summary(faces, photos, faceless)}"
        return text

    def manifest_summary(self) -> str:
        """One sentence on the manifest: which file, how many rows named an imported file."""
        if not self.manifest_source:
            return "No manifest was used: no labels, valence/arousal or gold items were set."
        return (f"Manifest used: {self.manifest_source} ({self.manifest_rows} rows, "
                f"{self.manifest_matched} matched a file).")


def faces_summary(faces: int, photos: int, faceless: int) -> str:
    """"5 faces found in 2 photos, 1 photo with no face" (upload reports of studies that crop faces)."""
    return (f"{faces} face{'s' if faces != 1 else ''} found in {photos} photo{'s' if photos != 1 else ''}, "
            f"{faceless} photo{'s' if faceless != 1 else ''} with no face")


class _Rejected(Exception):
    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


# --- one file --------------------------------------------------------------------------------------


def stimulus_import_file(
    *,
    study: Study,
    name: str,
    data: bytes,
    ground_truth: str = "",
    valence: float | str | None = None,
    arousal: float | str | None = None,
    is_gold: bool = False,
    source: str = "",
    metadata: dict | None = None,
) -> ImportResult:
    """Validate and store one image for `study`. Never raises for bad input: the result says why.

    Returns `imported` (with the new Stimulus), `duplicate` (same bytes already in this study; its
    labels are left unchanged) or `rejected` with a reason a researcher can act on. `metadata` is kept
    on the stimulus (e.g. the photo and box a face crop came from) and written to the exports.
    """
    try:
        _check_size(len(data))
        sha256 = hashlib.sha256(data).hexdigest()
        existing = Stimulus.objects.filter(study=study, sha256=sha256).only("pk", "original_name", "sha256").first()
        if existing is not None:
            return _duplicate(name, existing)
        image_format, width, height = _inspect_image(data)
        label = _clean_label(study, ground_truth)
        valence = _clean_affect("valence", valence)
        arousal = _clean_affect("arousal", arousal)
        if is_gold and not label:
            raise _Rejected("a gold item needs a ground-truth label")
    except _Rejected as rejection:
        return ImportResult(name, REJECTED, rejection.reason)
    stimulus = Stimulus(
        study=study, sha256=sha256, original_name=_base_name(name)[:255], width=width, height=height,
        ground_truth=label, valence=valence, arousal=arousal, is_gold=bool(is_gold), source=(source or "")[:128],
        metadata=metadata or {},
    )
    return _store(stimulus, data, f"{sha256}.{ALLOWED_FORMATS[image_format]}", name)


def stimulus_input_problem(
    *,
    study: Study,
    data: bytes,
    ground_truth: str = "",
    valence: float | str | None = None,
    arousal: float | str | None = None,
    is_gold: bool = False,
) -> str:
    """Why `data` with these labels would be rejected by stimulus_import_file ("" if it would not be): the
    same checks, for importers that first make other images out of a file (face crops of a photo)."""
    try:
        _check_size(len(data))
        _inspect_image(data)
        label = _clean_label(study, ground_truth)
        _clean_affect("valence", valence)
        _clean_affect("arousal", arousal)
        if is_gold and not label:
            raise _Rejected("a gold item needs a ground-truth label")
    except _Rejected as rejection:
        return rejection.reason
    return ""


def _duplicate(name: str, existing: Stimulus) -> ImportResult:
    """Same bytes as an image of the study: says which one, so that a re-upload reads as such."""
    return ImportResult(name, DUPLICATE, f"already in this study as {existing} (same file)", existing)


def _store(stimulus: Stimulus, data: bytes, filename: str, name: str) -> ImportResult:
    """Write the file, insert the row in its own transaction; on any failure remove the file again."""
    field = Stimulus._meta.get_field("image")
    try:
        with transaction.atomic():
            # Written through the storage, then named on the row: FieldFile.save() would re-save the
            # content on the model save and forget the dimensions we already know.
            stimulus.image.name = field.storage.save(field.generate_filename(stimulus, filename), ContentFile(data))
            stimulus.save()
    except IntegrityError:
        _remove_file(stimulus)
        existing = Stimulus.objects.filter(study=stimulus.study, sha256=stimulus.sha256).first()
        if existing is not None:  # a concurrent import of the same bytes won the race
            return _duplicate(name, existing)
        return ImportResult(name, REJECTED, "could not be saved (database constraint)")
    except BaseException:
        _remove_file(stimulus)
        raise
    return ImportResult(name, IMPORTED, "", stimulus)


def _remove_file(stimulus: Stimulus) -> None:
    if stimulus.image.name:
        stimulus.image.storage.delete(stimulus.image.name)


def _check_size(size: int) -> None:
    if size == 0:
        raise _Rejected("empty file")
    if size > MAX_IMAGE_BYTES:
        raise _Rejected(f"file too large ({size / 2**20:.1f} MB; at most {MAX_IMAGE_BYTES // 2**20} MB per image)")


class Importer(Protocol):
    """Turns one file's bytes (and its manifest values) into stimuli: stimulus_import_file, or a face cropper."""

    def __call__(self, *, study: Study, name: str, data: bytes, ground_truth: str, valence: str | None,
                 arousal: str | None, is_gold: bool, source: str) -> ImportResult | list[ImportResult]: ...


def _inspect_image(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) of a complete, decodable JPEG/PNG/WebP image; else raise _Rejected."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                image_format, (width, height) = probe.format, probe.size
                if image_format not in ALLOWED_FORMATS:
                    raise _Rejected(f"unsupported image format {image_format} (JPEG, PNG or WebP only)")
                if width == 0 or height == 0:
                    raise _Rejected("image has zero width or height")
                if width * height > MAX_IMAGE_PIXELS:
                    raise _Rejected(f"image too large ({width} x {height} pixels; possible decompression bomb)")
                if getattr(probe, "is_animated", False):
                    raise _Rejected("animated images are not supported")
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()  # decodes every pixel: catches truncation that verify() lets through
    except _Rejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _Rejected("image too large (decompression bomb)") from None
    except Image.UnidentifiedImageError:
        raise _Rejected("not an image (JPEG, PNG or WebP expected)") from None
    except Exception as exc:  # an untrusted decoder can fail in many ways; each means the same to us
        raise _Rejected(f"corrupt or truncated image ({exc})") from None
    return image_format, width, height


def _clean_label(study: Study, ground_truth: str | None) -> str:
    """The study's spelling of `ground_truth` ("happy" -> "Happiness"), "" when blank."""
    text = str(ground_truth or "").strip()
    if not text:
        return ""
    labels = list(study.label_set.labels)
    by_canonical = {canonical_label(label).lower(): label for label in labels}
    label = by_canonical.get(canonical_label(text).lower())
    if label is None:
        raise _Rejected(f"label {text!r} is not in the study's label set ({', '.join(labels)})")
    return label


def _clean_affect(name: str, value: float | str | None) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise _Rejected(f"{name} {value!r} is not a number") from None
    if not math.isfinite(number) or not -1.0 <= number <= 1.0:
        raise _Rejected(f"{name} {value} is outside [-1, 1]")
    return number


def _base_name(name: str) -> str:
    return PurePosixPath(str(name).replace("\\", "/")).name or str(name)


# --- manifests -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ManifestRow:
    line: int
    filename: str
    label: str = ""
    valence: str = ""
    arousal: str = ""
    is_gold: str = ""


def _too_large() -> InvalidArchive:
    return InvalidArchive(f"manifest too large (at most {MAX_MANIFEST_BYTES // 2**20} MB)")


class _CappedReader(io.RawIOBase):
    """A binary stream that refuses to deliver more than `limit` bytes (so a manifest is never read whole)."""

    def __init__(self, handle: BinaryIO, limit: int):
        self.handle, self.left = handle, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.handle.read(min(len(buffer), self.left + 1))
        if len(data) > self.left:
            raise _too_large()
        self.left -= len(data)
        buffer[:len(data)] = data
        return len(data)


def manifest_rows(source: str | Path | bytes | BinaryIO) -> Iterable[ManifestRow]:
    """Rows of a CSV manifest, parsed as they stream in: memory stays flat and at most MAX_MANIFEST_BYTES
    bytes and MAX_MANIFEST_ROWS rows are read. Raises InvalidArchive when the file as a whole cannot be used."""
    with ExitStack() as stack:
        if isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise InvalidArchive(f"manifest {path} not found")
            if path.stat().st_size > MAX_MANIFEST_BYTES:
                raise _too_large()
            handle = stack.enter_context(open(path, "rb"))
        elif isinstance(source, bytes):
            if len(source) > MAX_MANIFEST_BYTES:
                raise _too_large()
            handle = io.BytesIO(source)
        else:
            handle = source
        text = io.TextIOWrapper(io.BufferedReader(_CappedReader(handle, MAX_MANIFEST_BYTES)), encoding="utf-8-sig",
                                newline="")
        stack.callback(text.detach)  # leave the caller's handle open
        try:
            reader = csv.reader(text)
            header = [column.strip().lower() for column in next(reader, [])]
            if "filename" not in header:  # common spellings of the file column (e.g. "file", "path") are accepted
                alias = next((name for name in FILENAME_ALIASES if name in header), None)
                if alias is None:
                    raise InvalidArchive("manifest has no 'filename' column (expected: filename,label,valence,"
                                         f"arousal,is_gold; also accepted: {', '.join(FILENAME_ALIASES)})")
                header[header.index(alias)] = "filename"
            columns = [header.index(name) if name in header else None
                       for name in ("filename", "label", "valence", "arousal", "is_gold")]
            count = 0
            for values in reader:
                if not any(value.strip() for value in values):
                    continue
                count += 1
                if count > MAX_MANIFEST_ROWS:
                    raise InvalidArchive(f"manifest has more than {MAX_MANIFEST_ROWS} rows; an import holds at most "
                                         f"{MAX_ARCHIVE_MEMBERS} files, so split it")
                cells = [values[i].strip() if i is not None and i < len(values) else "" for i in columns]
                yield ManifestRow(reader.line_num, *cells)
        except UnicodeDecodeError:
            raise InvalidArchive("manifest is not UTF-8 text") from None
        except csv.Error as exc:
            raise InvalidArchive(f"manifest is not valid CSV ({exc})") from None


def manifest_parse(source: str | Path | bytes | BinaryIO) -> list[ManifestRow]:
    """All rows of a manifest at once (see manifest_rows for the limits)."""
    return list(manifest_rows(source))


def _normalise(path: str) -> str:
    text = str(path).strip().replace("\\", "/")
    while text.startswith("./"):
        text = text[2:]
    return text.strip("/").lower()


class _ManifestIndex:
    """Finds a file's row by relative path, any trailing part of it, or base name; tracks unused rows."""

    def __init__(self, rows: Iterable[ManifestRow]):
        self.rows: dict[str, ManifestRow] = {}
        self.problems: list[ImportResult] = []
        for row in rows:
            key = _normalise(row.filename)
            if not key:
                self.problems.append(ImportResult(f"manifest line {row.line}", REJECTED, "row has no filename"))
            elif key in self.rows:
                first = self.rows[key].line
                self.problems.append(ImportResult(
                    row.filename, REJECTED, f"listed again in the manifest (line {row.line}); line {first} is used"))
            else:
                self.rows[key] = row
        self.used: set[str] = set()

    def find(self, relative_path: str) -> ManifestRow | None:
        parts = _normalise(relative_path).split("/")
        for start in range(len(parts)):
            key = "/".join(parts[start:])
            if key in self.rows:
                self.used.add(key)
                return self.rows[key]
        return None

    def missing(self) -> list[ImportResult]:
        return [
            ImportResult(row.filename, REJECTED, f"listed in the manifest (line {row.line}) but no such file was found")
            for key, row in self.rows.items() if key not in self.used
        ]


def _parse_gold(value: str) -> bool:
    text = value.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _Rejected(f"is_gold {value!r} is not one of 1/0, true/false, yes/no")


# --- folders, zips and uploads ---------------------------------------------------------------------


@dataclass(frozen=True)
class _Entry:
    """A candidate file: its path relative to the import root, and how to read it (or why not to)."""

    path: str
    size: int
    read: Callable[[], bytes] | None
    problem: str = ""


def _skipped(parts: Sequence[str]) -> bool:
    """macOS resource forks, hidden files and folders, and manifests are never images to import."""
    return (
        any(part == "__MACOSX" or (part.startswith(".") and part not in (".", "..")) for part in parts)
        or (bool(parts) and parts[-1].lower() == MANIFEST_NAME)
    )


def _folder_entries(root: Path) -> list[_Entry]:
    entries = []
    for path in sorted(root.rglob("*")):
        relative = path.relative_to(root)
        if _skipped(relative.parts) or not path.is_file():
            continue
        entries.append(_Entry(relative.as_posix(), path.stat().st_size, path.read_bytes))
    return entries


def _zip_entries(archive: zipfile.ZipFile) -> list[_Entry]:
    members = [info for info in archive.infolist() if not info.is_dir()]
    if len(members) > MAX_ARCHIVE_MEMBERS:
        raise InvalidArchive(f"zip has {len(members)} files; at most {MAX_ARCHIVE_MEMBERS} per import")
    entries = []
    for info in members:
        name = info.filename.replace("\\", "/")
        parts = PurePosixPath(name).parts
        if _skipped(parts):
            continue
        if name.startswith("/") or ".." in parts or (parts and ":" in parts[0]):
            entries.append(_Entry(name, info.file_size, None, "unsafe path in zip (absolute or '..'); not imported"))
        elif info.file_size > MAX_IMAGE_BYTES:
            entries.append(_Entry(name, info.file_size, None, f"file too large ({info.file_size / 2**20:.1f} MB; "
                                                               f"at most {MAX_IMAGE_BYTES // 2**20} MB per image)"))
        else:
            entries.append(_Entry(name, info.file_size, partial(_read_member, archive, info)))
    return entries


def _read_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes:
    """Read at most MAX_IMAGE_BYTES + 1 bytes, so a member that lies about its size cannot exhaust memory."""
    try:
        with archive.open(info) as handle:
            data = handle.read(MAX_IMAGE_BYTES + 1)
    except Exception as exc:  # bad CRC, encryption, unknown compression, truncated archive
        raise _Rejected(f"unreadable zip entry ({exc})") from None
    if len(data) > MAX_IMAGE_BYTES:
        raise _Rejected(f"file too large (at most {MAX_IMAGE_BYTES // 2**20} MB per image)")
    return data


def _import_entries(
    *,
    study: Study,
    entries: Sequence[_Entry],
    manifest: str | Path | bytes | BinaryIO | list[ManifestRow] | None,
    source: str,
    progress: Callable[[ImportResult, int, int], None] | None,
    manifest_source: str = "",
    importer: Importer | None = None,
) -> ImportReport:
    rows = manifest if isinstance(manifest, list) else (list(manifest_rows(manifest)) if manifest is not None else [])
    index = _ManifestIndex(rows)
    report = ImportReport(results=list(index.problems), manifest_source=manifest_source if manifest is not None else "",
                          manifest_rows=len(rows))
    total = len(entries)
    for done, entry in enumerate(entries, start=1):
        results = _import_entry(study=study, entry=entry, row=index.find(entry.path), source=source,
                                importer=importer or stimulus_import_file)
        report.results.extend(results)
        if progress is not None:
            for result in results:  # a photo can give several faces: `done` counts files, not results
                progress(result, done, total)
    report.manifest_matched = len(index.used)
    report.results.extend(index.missing())
    return report


def _import_entry(*, study: Study, entry: _Entry, row: ManifestRow | None, source: str,
                  importer: Importer) -> list[ImportResult]:
    try:
        if entry.problem or entry.read is None:
            raise _Rejected(entry.problem or "cannot be read")
        _check_size(entry.size)
        is_gold = _parse_gold(row.is_gold) if row else False
        data = entry.read()
    except _Rejected as rejection:
        return [ImportResult(entry.path, REJECTED, rejection.reason)]
    except OSError as exc:
        return [ImportResult(entry.path, REJECTED, f"cannot be read ({exc.strerror or exc})")]
    results = importer(
        study=study, name=entry.path, data=data, source=source, is_gold=is_gold,
        ground_truth=row.label if row else "", valence=row.valence if row else None, arousal=row.arousal if row else None,
    )
    return results if isinstance(results, list) else [results]


def stimuli_import_archive(
    *,
    study: Study,
    path: str | Path,
    manifest: str | Path | bytes | BinaryIO | None = None,
    source: str = "",
    progress: Callable[[ImportResult, int, int], None] | None = None,
    importer: Importer | None = None,
) -> ImportReport:
    """Import every image under a folder (recursively) or inside a .zip file.

    Without `manifest`, a manifest.csv at the top of the folder or zip is used if present. `progress`
    is called after each file with (result, done, total) (once per result: a photo cut into faces gives
    several). `importer` makes stimuli of each file (default: the file as it is). Raises InvalidArchive
    only when nothing can be imported at all (missing path, not a folder or zip, unreadable manifest).
    """
    root = Path(path)
    source = source or root.name
    manifest_source = str(manifest) if isinstance(manifest, (str, Path)) else "the given manifest"
    if root.is_dir():
        if manifest is None and (root / MANIFEST_NAME).is_file():
            manifest, manifest_source = root / MANIFEST_NAME, f"{MANIFEST_NAME} in {root.name}/"
        return _import_entries(study=study, entries=_folder_entries(root), manifest=manifest, source=source,
                               progress=progress, manifest_source=manifest_source, importer=importer)
    if not root.exists():
        raise InvalidArchive(f"{path} does not exist")
    if not zipfile.is_zipfile(root):
        raise InvalidArchive(f"{path} is not a folder or a .zip file")
    try:
        with ExitStack() as stack:
            archive = stack.enter_context(zipfile.ZipFile(root))
            if manifest is None and (inner := _zip_manifest_name(archive)) is not None:
                manifest, manifest_source = zip_manifest_open(archive, stack), f"{inner} in {root.name}"
            return _import_entries(study=study, entries=_zip_entries(archive), manifest=manifest, source=source,
                                   progress=progress, manifest_source=manifest_source, importer=importer)
    except zipfile.BadZipFile as exc:
        raise InvalidArchive(f"{path} is not a readable zip file ({exc})") from None


def zip_manifest_open(archive: zipfile.ZipFile, stack: ExitStack) -> BinaryIO | None:
    """The zip's manifest.csv as a stream (closed with `stack`), or None. Its declared size is checked before a
    byte is read, and manifest_rows caps the bytes actually read (a member can lie about its size)."""
    inner = _zip_manifest_name(archive)
    if inner is None:
        return None
    if archive.getinfo(inner).file_size > MAX_MANIFEST_BYTES:
        raise _too_large()
    return stack.enter_context(archive.open(inner))


def _zip_manifest_name(archive: zipfile.ZipFile) -> str | None:
    """manifest.csv at the top of the zip, or inside its single top folder (as Finder's zips have)."""
    names = [name for name in archive.namelist() if PurePosixPath(name).name.lower() == MANIFEST_NAME
             and "__MACOSX" not in name and len(PurePosixPath(name).parts) <= 2]
    top = [name for name in names if len(PurePosixPath(name).parts) == 1]
    if top:
        return top[0]
    return names[0] if len(names) == 1 else None


class Upload(Protocol):
    """What the import needs of an uploaded file (Django's UploadedFile fits): a name, a size, read()."""

    name: str
    size: int

    def read(self) -> bytes: ...


def stimuli_import_uploads(
    *,
    study: Study,
    files: Iterable[Upload],
    manifest: bytes | BinaryIO | None = None,
    source: str = "upload",
) -> ImportReport:
    """Import files sent through the web form: images, or .zip files that are expanded in place.

    Exactly as the command line: a manifest.csv inside a zip (at its top or in its single top folder)
    is used when no separate manifest is uploaded; with several such zips their rows are combined.
    A separately uploaded manifest wins over those inside zips. The report names the manifest used.
    """
    with ExitStack() as stack:
        entries: list[_Entry] = []
        inner_rows: list[ManifestRow] = []
        inner_sources: list[str] = []
        for upload in files:
            name = _base_name(upload.name)
            if not name.lower().endswith(".zip"):
                entries.append(_Entry(name, upload.size, upload.read))
                continue
            try:
                archive = stack.enter_context(zipfile.ZipFile(upload))
                entries.extend(_zip_entries(archive))
                if manifest is None and (inner := _zip_manifest_name(archive)) is not None:
                    inner_rows.extend(manifest_parse(zip_manifest_open(archive, stack)))
                    inner_sources.append(f"{inner} in {name}")
            except (zipfile.BadZipFile, OSError) as exc:
                entries.append(_Entry(name, upload.size, None, f"not a readable zip file ({exc})"))
        if manifest is not None:
            return _import_entries(study=study, entries=entries, manifest=manifest, source=source, progress=None,
                                   manifest_source=f"the uploaded manifest {getattr(manifest, 'name', '') or ''}".strip())
        return _import_entries(study=study, entries=entries, manifest=inner_rows if inner_sources else None,
                               source=source, progress=None, manifest_source=", ".join(inner_sources))


def stimulus_copy(*, stimulus: Stimulus, study: Study) -> ImportResult:
    """A copy of `stimulus` (file and labels, no votes) in another study, e.g. when a study is cloned."""
    with stimulus.image.open("rb") as handle:
        data = handle.read()
    ext = stimulus.image.name.rsplit(".", 1)[-1] if "." in stimulus.image.name else "bin"
    copy = Stimulus(
        study=study, sha256=stimulus.sha256, original_name=stimulus.original_name, width=stimulus.width,
        height=stimulus.height, ground_truth=stimulus.ground_truth, valence=stimulus.valence,
        arousal=stimulus.arousal, is_gold=stimulus.is_gold, source=stimulus.source, metadata=stimulus.metadata,
    )
    return _store(copy, data, f"{stimulus.sha256}.{ext}", stimulus.original_name or stimulus.sha256)
