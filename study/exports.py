"""CSV exports of a study, streamed row by row so memory stays flat however many votes there are.

Files: votes.csv, stimuli.csv, participants.csv, predictions.csv, distributions.csv and codebook.md, plus
all of them as one zip. `stream(study, name)` yields encoded chunks for StreamingHttpResponse and for the
export_study command alike. Rows come from `.iterator(chunk_size=...)` querysets (server-side cursors on
PostgreSQL).
"""
from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator

from django.db import connection
from django.db.models import Case, Count, F, Func, IntegerField, OuterRef, Subquery, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Concat

from study.analysis import metrics
from study.models import Assignment, Participant, Prediction, Stimulus, Study, Vote
from study.selectors.votes import counted_votes

CHUNK = 5000

# CSV formula injection (OWASP): a spreadsheet runs a cell that starts with one of these as a formula, e.g. a
# PROLIFIC_PID of `=HYPERLINK(...)`. Every text cell of every export (headers too) that starts with one gets a
# leading single quote, which spreadsheets show as text; numbers (e.g. a valence of -0.5) are left alone.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value):
    """`'=1+1` for `=1+1`; anything that is not a string, or does not start with a trigger, unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def _neutralise_sql(expression):
    """The same rule in SQL, for text columns that PostgreSQL's COPY formats itself."""
    return Case(When(**{f"{expression}__regex": r"^[-=+@\t\r]"}, then=Concat(Value("'"), F(expression))),
                default=F(expression), output_field=TextField())


CODEBOOK = """# {title} ({slug}): codebook

Exported by EmoStudy. Label order (the study's label set "{label_set}"): {labels}.
Human distributions leave out participants flagged `excluded` (failed attention checks){simulated_note};
votes.csv keeps every vote with its flags, so other rules can be applied.

## votes.csv — one row per vote
- participant: the participant's public id (a UUID; never the cookie token)
- prolific_pid, study_id, session_id: ids passed in the study link (PROLIFIC_PID, STUDY_ID, SESSION_ID)
- external_ids: every recorded URL parameter, as JSON
- stimulus: the image's public id; file: its original file name
- label: the emotion chosen; response_ms: milliseconds from the image being shown to the choice
- position: 0-based place of the image in the participant's sequence
- is_gold: the image is an attention-check item with a known label
- participant_excluded: the participant failed the attention checks (votes kept, flagged)
- created_at: when the vote was stored (ISO 8601, UTC)
- is_simulated: the vote is a simulated annotator's (e.g. the demo's synthetic panel), not a person's; its
  response_ms is 0 (no time was measured)

Text cells in every file that begin with `=`, `+`, `-`, `@`, a tab or a carriage return are written with a
leading single quote (`'=1+1`), as OWASP recommends against CSV formula injection: spreadsheets then show
them as text instead of running them. Remove that one leading `'` to get the value as it was received.
Numbers (response times, valence, probabilities) are never changed.

## stimuli.csv — one row per image
- stimulus, file, sha256, width, height, source, is_gold
- ground_truth, valence, arousal: as imported (may be empty)
- votes_<label>: counted votes for each label (excluded participants left out)
- n_votes: their sum; p_<label>: the human distribution (votes_<label> / n_votes; empty when n_votes is 0)
- human_entropy: normalised entropy of the human distribution, in [0, 1]

## participants.csv — one row per participant
- participant (public id), external_ids (JSON), user_agent_family, started_at, consented_at, finished_at
- n_votes, gold_answered, gold_correct, gold_score (fraction correct), excluded, exclusion_reason
- is_simulated: a simulated annotator (external_ids names its panel), not a person

## predictions.csv — one row per image and model
- stimulus, file, model, model_arch
- p_<label>: the model's probability for each label, in the study's label order (sums to 1)
- dropped_mass: probability the model put on classes the study lacks, removed before renormalising
- ambiguity: normalised entropy of the model's distribution; valence, arousal: if the model predicts them

## distributions.csv — human soft labels, the CIFAR-10H / RAF-DB layout
- file, then one column per label with the counted votes (excluded participants and gold items left out)
"""


def _labels(study: Study) -> list[str]:
    return list(study.label_set.labels)


def _csv_stream(header: list, rows: Iterable[list]) -> Iterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([neutralise_cell(cell) for cell in header])
    for i, row in enumerate(rows, 1):
        writer.writerow([neutralise_cell(cell) for cell in row])
        if i % 500 == 0:
            yield buffer.getvalue().encode()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue().encode()


def _iso(value) -> str:
    return value.isoformat() if value else ""


def _votes_queryset(study: Study):
    # The position comes from the matching assignment through an indexed subquery, not a Python dict,
    # so memory stays flat with a million votes.
    position = Assignment.objects.filter(participant=OuterRef("participant_id"), stimulus=OuterRef("stimulus_id"))
    return (Vote.objects.filter(stimulus__study=study).order_by("pk")
            .annotate(position=Subquery(position.values("position")[:1])))


def votes_rows(study: Study) -> Iterator[list]:
    """One row per vote, formatted in Python (any database)."""
    rows = _votes_queryset(study).values_list(
        "participant__public_id", "participant__external_ids", "stimulus__public_id", "stimulus__original_name",
        "label", "response_ms", "position", "stimulus__is_gold", "participant__excluded", "created_at",
        "participant__is_simulated")
    for (participant, external, stimulus, name, label, ms, place, gold, excluded, created, simulated) in rows.iterator(
            chunk_size=CHUNK):
        external = external or {}
        yield [participant, external.get("PROLIFIC_PID", ""), external.get("STUDY_ID", ""),
               external.get("SESSION_ID", ""), json.dumps(external, sort_keys=True), stimulus, name, label, ms,
               "" if place is None else place, int(gold), int(excluded), _iso(created), int(simulated)]


def votes_copy_stream(study: Study) -> Iterator[bytes]:
    """votes.csv produced by PostgreSQL itself (COPY ... TO STDOUT WITH CSV), streamed block by block.

    The same columns as votes_rows, formatted in SQL: a million votes export at close to COPY's own
    speed instead of paying Python's per-row cost (see bench/export.py).
    """
    import psycopg

    text, integer = TextField(), IntegerField()
    queryset = _votes_queryset(study).annotate(
        participant_text=Cast("participant__public_id", text),
        prolific_pid=Coalesce(KeyTextTransform("PROLIFIC_PID", "participant__external_ids"), Value(""),
                              output_field=text),
        study_id_param=Coalesce(KeyTextTransform("STUDY_ID", "participant__external_ids"), Value(""),
                                output_field=text),
        session_id=Coalesce(KeyTextTransform("SESSION_ID", "participant__external_ids"), Value(""),
                            output_field=text),
        external_text=Cast("participant__external_ids", text),
        stimulus_text=Cast("stimulus__public_id", text),
        gold=Cast("stimulus__is_gold", integer), excluded=Cast("participant__excluded", integer),
        simulated=Cast("participant__is_simulated", integer),
        created_text=Func(F("created_at"), Value('YYYY-MM-DD"T"HH24:MI:SS.USTZH:TZM'), function="to_char",
                          output_field=text),
    ).annotate(
        prolific_safe=_neutralise_sql("prolific_pid"), study_id_safe=_neutralise_sql("study_id_param"),
        session_safe=_neutralise_sql("session_id"), file_safe=_neutralise_sql("stimulus__original_name"),
        label_safe=_neutralise_sql("label"),
    ).values_list("participant_text", "prolific_safe", "study_id_safe", "session_safe", "external_text",
                  "stimulus_text", "file_safe", "label_safe", "response_ms", "position", "gold",
                  "excluded", "created_text", "simulated")
    sql, params = queryset.query.sql_with_params()
    connection.ensure_connection()
    statement = psycopg.ClientCursor(connection.connection).mogrify(sql, params)
    yield _csv_line([neutralise_cell(cell) for cell in VOTES_HEADER])
    with connection.connection.cursor() as cursor:
        with cursor.copy(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                yield bytes(block)


def _csv_line(values: list) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue().encode()


VOTES_HEADER = ["participant", "prolific_pid", "study_id", "session_id", "external_ids", "stimulus", "file", "label",
                "response_ms", "position", "is_gold", "participant_excluded", "created_at", "is_simulated"]


def _counts_by_stimulus(study: Study, labels: list[str], include_gold: bool = True) -> dict[int, list[int]]:
    votes = counted_votes(study)
    if not include_gold:
        votes = votes.filter(stimulus__is_gold=False)
    counts: dict[int, list[int]] = {}
    index = {label: k for k, label in enumerate(labels)}
    for sid, label, n in votes.order_by().values_list("stimulus_id", "label").annotate(n=Count("pk")):
        if label in index:
            counts.setdefault(sid, [0] * len(labels))[index[label]] = n
    return counts


def stimuli_rows(study: Study) -> Iterator[list]:
    labels = _labels(study)
    counts = _counts_by_stimulus(study, labels)
    for s in Stimulus.objects.filter(study=study).order_by("pk").iterator(chunk_size=CHUNK):
        c = counts.get(s.pk, [0] * len(labels))
        n = sum(c)
        shares = [f"{v / n:.6f}" for v in c] if n else [""] * len(labels)
        entropy = f"{float(metrics.normalised_entropy([v / n for v in c])):.6f}" if n else ""
        yield [s.public_id, s.original_name, s.sha256, s.width, s.height, s.source, int(s.is_gold), s.ground_truth,
               "" if s.valence is None else s.valence, "" if s.arousal is None else s.arousal, *c, n, *shares, entropy]


def stimuli_header(labels: list[str]) -> list[str]:
    return (["stimulus", "file", "sha256", "width", "height", "source", "is_gold", "ground_truth", "valence",
             "arousal"] + [f"votes_{name}" for name in labels] + ["n_votes"] + [f"p_{name}" for name in labels]
            + ["human_entropy"])


PARTICIPANTS_HEADER = ["participant", "external_ids", "user_agent_family", "started_at", "consented_at", "finished_at",
                       "n_votes", "gold_answered", "gold_correct", "gold_score", "excluded", "exclusion_reason",
                       "is_simulated"]


def participants_rows(study: Study) -> Iterator[list]:
    people = Participant.objects.filter(study=study).annotate(n_votes=Count("votes")).order_by("pk")
    for p in people.iterator(chunk_size=CHUNK):
        yield [p.public_id, json.dumps(p.external_ids, sort_keys=True), p.user_agent_family, _iso(p.started_at),
               _iso(p.consented_at), _iso(p.finished_at), p.n_votes, p.gold_answered, p.gold_correct,
               "" if p.gold_score is None else p.gold_score, int(p.excluded), p.exclusion_reason,
               int(p.is_simulated)]


def predictions_rows(study: Study) -> Iterator[list]:
    rows = (Prediction.objects.filter(stimulus__study=study).order_by("stimulus_id", "model_version__name")
            .values_list("stimulus__public_id", "stimulus__original_name", "model_version__name",
                         "model_version__arch", "distribution", "dropped_mass", "ambiguity", "valence", "arousal"))
    for sid, name, model, arch, dist, dropped, ambiguity, valence, arousal in rows.iterator(chunk_size=CHUNK):
        yield [sid, name, model, arch, *[f"{p:.6f}" for p in dist], f"{dropped:.6f}", f"{ambiguity:.6f}",
               "" if valence is None else valence, "" if arousal is None else arousal]


def distributions_rows(study: Study) -> Iterator[list]:
    labels = _labels(study)
    counts = _counts_by_stimulus(study, labels, include_gold=False)
    for pk, name in Stimulus.objects.filter(study=study, is_gold=False).order_by("pk").values_list(
            "pk", "original_name").iterator(chunk_size=CHUNK):
        yield [name, *counts.get(pk, [0] * len(labels))]


def stream(study: Study, name: str) -> Iterator[bytes]:
    labels = _labels(study)
    if name == "votes.csv":
        if connection.vendor == "postgresql":
            return votes_copy_stream(study)
        return _csv_stream(VOTES_HEADER, votes_rows(study))
    if name == "stimuli.csv":
        return _csv_stream(stimuli_header(labels), stimuli_rows(study))
    if name == "participants.csv":
        return _csv_stream(PARTICIPANTS_HEADER, participants_rows(study))
    if name == "predictions.csv":
        header = ["stimulus", "file", "model", "model_arch", *[f"p_{name}" for name in labels], "dropped_mass",
                  "ambiguity", "valence", "arousal"]
        return _csv_stream(header, predictions_rows(study))
    if name == "distributions.csv":
        return _csv_stream(["file", *labels], distributions_rows(study))
    if name == "codebook.md":
        simulated_note = ("; simulated participants count" if study.include_simulated
                          else " and simulated participants (the study leaves them out)")
        return iter([CODEBOOK.format(title=study.title, slug=study.slug, label_set=study.label_set.name,
                                     labels=", ".join(labels), simulated_note=simulated_note).encode()])
    raise KeyError(name)


EXPORT_FILES = ["votes.csv", "stimuli.csv", "participants.csv", "predictions.csv", "distributions.csv", "codebook.md"]


class _ZipSink(io.RawIOBase):
    """A write-only file for zipfile that hands each written chunk to the response as it comes."""

    def __init__(self):
        self.chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        self.chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data, self.chunks = b"".join(self.chunks), []
        return data


def zip_stream(study: Study) -> Iterator[bytes]:
    """All export files in one zip, streamed (zipfile writes to a non-seekable sink)."""
    sink = _ZipSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in EXPORT_FILES:
            with archive.open(f"{study.slug}/{name}", "w", force_zip64=True) as member:
                for chunk in stream(study, name):
                    member.write(chunk)
                    if len(sink.chunks) > 16:
                        yield sink.take()
            yield sink.take()
    yield sink.take()
