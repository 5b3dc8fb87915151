"""Import existing human annotations (FER+'s taggers, RAF-DB's, CIFAR-10H-style files) as a named source.

Two CSV layouts, told apart by the header:
- long: one row per annotator and image -- a filename column, an annotator column, a label column and an
  optional response time in ms (CIFAR-10H's raw file: image_filename, annotator_id, chosen_label,
  reaction_time);
- counts: one row per image -- a filename column and one column per label holding how many annotators chose
  it (FER+'s fer2013new.csv: "Image name", neutral, happiness, ..., unknown, NF).
Column names are matched case-insensitively from the lists below; label names (a long file's values, a
count file's columns) through ml.labels' aliases, so "happy", "Happiness" and "HAPPINESS" are one label.

Images are matched by file name (the basename of the file's path) to the study's images' original names.
Rows naming an unknown image or label, and count columns that are not labels (FER+'s "unknown", "NF",
"Usage"), are reported with how many rows/votes they held, never silently dropped and never fatal.

Idempotent: rows are upserted under (source, image, annotator) for long files and (source, image, label)
for count files, so importing the same file again changes nothing; a corrected file updates what changed.
A source keeps its layout: a long file cannot be imported into a counts source or the other way round.
"""
from __future__ import annotations

import csv
import io
import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import PurePosixPath, PureWindowsPath

from django.db import transaction

from ml.labels import canonical_label
from study.errors import InvalidInput
from study.models import ImportedVote, Stimulus, Study, VoteSource

FILENAME_COLUMNS = ("filename", "file", "image", "image name", "image_name", "image_filename", "image_path", "path",
                    "stimulus", "name")
ANNOTATOR_COLUMNS = ("annotator", "annotator_id", "worker", "worker_id", "rater", "rater_id", "participant",
                     "tagger", "user")
LABEL_COLUMNS = ("label", "chosen_label", "emotion", "choice", "answer", "category")
RESPONSE_COLUMNS = ("response_ms", "rt", "rt_ms", "reaction_time", "response_time", "response_time_ms")
MAX_BYTES = 200 * 1024 * 1024


@dataclass
class ImportReport:
    source: str
    kind: str
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    images: int = 0
    unknown_images: Counter = field(default_factory=Counter)  # file name -> rows
    unknown_labels: Counter = field(default_factory=Counter)  # label -> rows (long) or votes (counts)
    problems: list[str] = field(default_factory=list)  # "line N: ..." for malformed rows

    @property
    def written(self) -> int:
        return self.created + self.updated

    def lines(self, limit: int = 20) -> list[str]:
        """A human summary, worst news last."""
        out = [f"{self.source} ({self.kind} format): {self.rows} rows, {self.images} images; "
               f"{self.created} new, {self.updated} updated, {self.unchanged} unchanged"]
        for title, counter, unit in (("unknown images", self.unknown_images, "rows"),
                                     ("unknown labels", self.unknown_labels,
                                      "votes" if self.kind == VoteSource.Kind.COUNTS else "rows")):
            if counter:
                shown = ", ".join(f"{name} ({n} {unit})" for name, n in counter.most_common(limit))
                more = f" and {len(counter) - limit} more" if len(counter) > limit else ""
                out.append(f"{title}: {shown}{more}")
        out.extend(self.problems[:limit])
        if len(self.problems) > limit:
            out.append(f"... and {len(self.problems) - limit} more problems")
        return out


def _find(header: list[str], names: tuple[str, ...]) -> int | None:
    lowered = [h.strip().lower() for h in header]
    return next((lowered.index(n) for n in names if n in lowered), None)


def _base_name(value: str) -> str:
    value = value.strip()
    return PurePosixPath(PureWindowsPath(value).as_posix()).name


def _decode(data: bytes) -> str:
    if len(data) > MAX_BYTES:
        raise InvalidInput(f"The file is larger than {MAX_BYTES // (1024 * 1024)} MB.")
    for encoding in ("utf-8-sig", "latin-1"):
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    raise InvalidInput("The file is not text.")  # pragma: no cover - latin-1 decodes any bytes


def parse_vote_file(data: bytes, labels: list[str]) -> tuple[str, list[tuple[int, str, str, str, int, int | None]],
                                                            Counter, list[str]]:
    """-> (kind, rows as (line, file name, annotator, study label, count, response ms), unknown labels, problems).

    Pure: no database. Raises InvalidInput when the header fits neither layout.
    """
    text = _decode(data)
    try:
        dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    header = next(reader, None)
    if not header:
        raise InvalidInput("The file is empty.")
    study_label = {canonical_label(label): label for label in labels}
    file_col = _find(header, FILENAME_COLUMNS)
    if file_col is None:
        raise InvalidInput(f"No file name column: expected one of {', '.join(FILENAME_COLUMNS)}; "
                           f"the header is {', '.join(header)}.")
    label_col = _find(header, LABEL_COLUMNS)
    unknown, problems, rows = Counter(), [], []
    if label_col is not None:
        kind = VoteSource.Kind.LONG
        annotator_col = _find(header, ANNOTATOR_COLUMNS)
        if annotator_col is None:
            raise InvalidInput(f"A long-format file needs an annotator column ({', '.join(ANNOTATOR_COLUMNS)}).")
        rt_col = _find(header, RESPONSE_COLUMNS)
        for line, row in enumerate(reader, start=2):
            if not any(cell.strip() for cell in row):
                continue
            if len(row) <= max(file_col, label_col, annotator_col):
                problems.append(f"line {line}: too few columns")
                continue
            raw_label, annotator = row[label_col].strip(), row[annotator_col].strip()[:100]
            if not annotator:
                problems.append(f"line {line}: no annotator")
                continue
            label = study_label.get(canonical_label(raw_label))
            if label is None:
                unknown[raw_label or "(blank)"] += 1
                continue
            rt = None
            if rt_col is not None and rt_col < len(row) and row[rt_col].strip():
                try:
                    value = float(row[rt_col])
                except ValueError:
                    value = math.nan
                if not math.isfinite(value) or value < 0:
                    problems.append(f"line {line}: response time {row[rt_col]!r} is not a number of ms; kept the vote")
                else:
                    rt = round(value)
            rows.append((line, _base_name(row[file_col]), annotator, label, 1, rt))
        return kind, rows, unknown, problems
    kind = VoteSource.Kind.COUNTS
    columns = {i: study_label.get(canonical_label(name)) for i, name in enumerate(header) if i != file_col}
    label_columns = {i: label for i, label in columns.items() if label is not None}
    if not label_columns:
        raise InvalidInput(f"Neither a label column ({', '.join(LABEL_COLUMNS)}) nor count columns named after "
                           f"the study's labels ({', '.join(labels)}).")
    other = [i for i, label in columns.items() if label is None]
    for line, row in enumerate(reader, start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= max(file_col, *label_columns):
            problems.append(f"line {line}: too few columns")
            continue
        parsed = {}
        for i, label in label_columns.items():
            cell = row[i].strip() or "0"
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value) or value < 0 or value != int(value):
                problems.append(f"line {line}: {header[i]} = {row[i]!r} is not a whole count")
                parsed = None
                break
            parsed[label] = int(value)
        if parsed is None:
            continue
        for i in other:  # FER+'s "unknown", "NF": votes for labels the study does not have
            if i < len(row):
                try:
                    extra = float(row[i])
                except ValueError:
                    continue
                if math.isfinite(extra) and extra > 0 and extra == int(extra):
                    unknown[header[i].strip()] += int(extra)
        name = _base_name(row[file_col])
        rows.extend((line, name, "", label, n, None) for label, n in parsed.items())
    return kind, rows, unknown, problems


@transaction.atomic
def votes_import(*, study: Study, source_name: str, data: bytes) -> ImportReport:
    """Parse `data` and upsert it into the study's source `source_name` (created if new). Raises InvalidInput
    for a file that fits neither layout or a layout that differs from the source's."""
    source_name = source_name.strip()
    if not source_name:
        raise InvalidInput("Give the source a name, e.g. 'FER+ taggers'.")
    if len(source_name) > 100:
        raise InvalidInput("A source name has at most 100 characters.")
    kind, rows, unknown_labels, problems = parse_vote_file(data, list(study.label_set.labels))
    source, _ = VoteSource.objects.select_for_update().get_or_create(study=study, name=source_name,
                                                                      defaults={"kind": kind})
    if source.kind != kind:
        raise InvalidInput(f"The source {source_name!r} holds {source.get_kind_display().lower()}; this file is in "
                           f"the other layout. Import it under another name.")
    report = ImportReport(source=source_name, kind=kind, unknown_labels=unknown_labels, problems=problems)
    by_name: dict[str, list[int]] = defaultdict(list)
    for pk, name in Stimulus.objects.filter(study=study).values_list("pk", "original_name"):
        by_name[name].append(pk)
    key_of = (lambda r: (r[2],)) if kind == VoteSource.Kind.LONG else (lambda r: (r[3],))
    wanted: dict[tuple, tuple] = {}
    for row in rows:
        line, name, annotator, label, count, rt = row
        report.rows += 1
        matches = by_name.get(name)
        if not matches:
            report.unknown_images[name or "(blank)"] += 1
            continue
        if len(matches) > 1:
            report.problems.append(f"line {line}: {len(matches)} images of the study are named {name!r}; skipped")
            continue
        key = (matches[0], *key_of(row))
        if key in wanted and kind == VoteSource.Kind.LONG and wanted[key][0] != label:
            report.problems.append(f"line {line}: annotator {annotator!r} labelled {name!r} twice; kept the first")
            continue
        if key not in wanted:
            wanted[key] = (label, count, rt, annotator)
    report.rows = report.rows if kind == VoteSource.Kind.LONG else len({r[0] for r in rows})
    existing = {}
    for vote in ImportedVote.objects.filter(source=source):
        key = (vote.stimulus_id, vote.annotator) if kind == VoteSource.Kind.LONG else (vote.stimulus_id, vote.label)
        existing[key] = vote
    create, update = [], []
    for key, (label, count, rt, annotator) in wanted.items():
        vote = existing.get(key)
        if vote is None:
            create.append(ImportedVote(source=source, stimulus_id=key[0], annotator=annotator, label=label,
                                       count=count, response_ms=rt))
        elif (vote.label, vote.count, vote.response_ms) != (label, count, rt):
            vote.label, vote.count, vote.response_ms = label, count, rt
            update.append(vote)
        else:
            report.unchanged += 1
    ImportedVote.objects.bulk_create(create, batch_size=2000)
    ImportedVote.objects.bulk_update(update, ["label", "count", "response_ms"], batch_size=2000)
    report.created, report.updated = len(create), len(update)
    report.images = len({key[0] for key in wanted})
    if create or update:
        source.save(update_fields=["updated_at"])
    return report
