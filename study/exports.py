"""CSV exports of a study, streamed row by row so memory stays flat however many votes there are.

Files: votes.csv, stimuli.csv, participants.csv, predictions.csv, summary.csv, distributions.csv, soft_labels.csv,
distributions_<method>.csv per aggregation method and codebook.md, plus all of them as one zip (the slow
GLAD and MACE aggregations left out of it). Floats of model outputs are written with 9 significant digits,
enough to round-trip a float32. `stream(study, name)` yields encoded chunks for StreamingHttpResponse and for the
export_study command alike. Rows come from `.iterator(chunk_size=...)` querysets (server-side cursors on
PostgreSQL).

Studies whose images were cut out of photos (face cropping on import) get the face columns (FACE_COLUMNS, from
each stimulus's metadata) at the end of stimuli.csv, votes.csv and predictions.csv, and a codebook section.
"""
from __future__ import annotations

import csv
import io
import json
import zipfile
from collections.abc import Iterable, Iterator

from django.db import connection
from django.db.models import Case, Count, F, Func, IntegerField, OuterRef, Q, Subquery, TextField, Value, When
from django.db.models.fields.json import KeyTextTransform
from django.db.models.functions import Cast, Coalesce, Concat

from study.analysis import aggregation, metrics
from study.analysis.label_mapping import missing_study_labels
from study.analysis.precision import format_float32
from study.models import Assignment, ModelVersion, Participant, Prediction, Stimulus, Study, Vote
from study.selectors.compare import aggregated_distributions, comparison_data, model_summaries
from study.selectors.votes import counted_votes

CHUNK = 5000

# CSV formula injection (OWASP): a spreadsheet runs a cell that starts with one of these as a formula, e.g. a
# PROLIFIC_PID of `=HYPERLINK(...)`. Every text cell of every export (headers too) that starts with one gets a
# leading single quote, which spreadsheets show as text; numbers (e.g. a valence of -0.5) are left alone.
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
FACE_COLUMNS = ["source_photo", "face_index", "face_x", "face_y", "face_w", "face_h", "face_score", "face_crop"]


def has_face_columns(study: Study) -> bool:
    """Whether the exports carry the face columns: the study crops faces, or has images cut out of photos."""
    return study.face_crop != Study.FaceCrop.OFF or Stimulus.objects.filter(
        study=study, metadata__has_key="source_photo").exists()


def face_cells(metadata: dict | None) -> list:
    """The FACE_COLUMNS values of one stimulus ("" where not a face crop)."""
    metadata = metadata or {}
    return ["" if metadata.get(name) is None else metadata[name] for name in FACE_COLUMNS]


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
Non-emotion answers (left out of every distribution, reported as counts): {non_emotion}.
Human distributions leave out participants flagged `excluded` (failed attention checks){simulated_note};
votes.csv keeps every vote with its flags, so other rules can be applied. Test participants (a
researcher's preview) are {test_note}.

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
- too_fast: 1 when response_ms is below the study's threshold ({fast_ms} ms; 0 turns the flag off)
- participant_is_test: 1 for a researcher's test run (preview), only present with include_test

Text cells in every file that begin with `=`, `+`, `-`, `@`, a tab or a carriage return are written with a
leading single quote (`'=1+1`), as OWASP recommends against CSV formula injection: spreadsheets then show
them as text instead of running them. Remove that one leading `'` to get the value as it was received.
Numbers (response times, valence, probabilities) are never changed.

## stimuli.csv — one row per image
- stimulus, file, sha256, width, height, source, is_gold
- ground_truth, valence, arousal: as imported (may be empty)
- votes_<label>: counted votes for each label (excluded participants left out)
- n_votes: their sum; p_<label>: the human distribution (votes_<label> / n_votes; empty when n_votes is 0)
- other_<answer>: counted non-emotion answers ("Unknown", "Not a face"), not part of n_votes or p_<label>
- human_entropy: normalised entropy of the human distribution, in [0, 1]
{faces_note}
## participants.csv — one row per participant
- participant (public id); prolific_pid, study_id, session_id: PROLIFIC_PID, STUDY_ID, SESSION_ID from the link
- external_ids (JSON), user_agent_family, device_type (phone, tablet or desktop), started_at, consented_at, finished_at
- n_votes, n_too_fast (votes below the fast-response threshold), gold_answered, gold_correct,
  gold_score (fraction correct), excluded, exclusion_reason, is_test (a researcher's preview)
- is_simulated: a simulated annotator (external_ids names its panel), not a person

## predictions.csv — one row per image and model
- stimulus, file, model, model_arch
- p_<label>: the model's probability for each label, in the study's label order (sums to 1)
- dropped_mass: probability the model put on classes the study lacks, removed before renormalising
- ambiguity: normalised entropy of the model's distribution; valence, arousal: if the model predicts them
- missing_labels: study labels the model has no class for, separated by `;` (empty when it has every
  label); their p_<label> is always 0, because the researcher chose to run the model without them

## summary.csv — study-level agreement of each model with the human distributions (the comparison page's table)
Human reference: the live votes as vote shares (excluded participants, gold items and, unless the study
counts them, simulated participants left out); images count when they have votes and a prediction.
- label_scope: `all` (every study label; a label the model lacks has probability 0, so votes for it count
  against the model) or `shared` (only the labels the model has: both distributions restricted to them and
  renormalised; images whose votes are all on missing labels are left out and counted in
  only_missing_images). `all` rows list every model, each imported vote source scored like a model, and the
  three human ceilings; `shared` rows list the models only (for a model with every label they equal its
  `all` row). Ceilings and sources always cover all labels.
- source: the model, source or ceiling's name; kind: model, imported_source or ceiling; model_id
- n_images: images scored; top1_agreement, mean_js, mean_kl, mean_cosine, mean_intersection,
  entropy_spearman, ece: the metrics as defined on the comparison page (empty when they cannot be computed)
- of_ceiling_top1_agreement, of_ceiling_mean_js, of_ceiling_mean_kl, of_ceiling_mean_cosine,
  of_ceiling_mean_intersection, of_ceiling_entropy_spearman, of_ceiling_ece: a model's (or source's) figure as
  a fraction of the human noise floor's (model/ceiling where higher is better, ceiling/model where lower is
  better; 1 = as good as the true distributions would look); `shared` rows use the noise floor of the shared
  labels' votes; empty on ceiling rows
- missing_labels: study labels the model has no class for, separated by `;` (empty when none)
- labels_scored: the labels the figures cover, separated by `;`
- only_missing_images: images whose votes are all for labels the model lacks (left out of its `shared` row,
  counted in its `all` row)

## distributions.csv — human soft labels, the CIFAR-10H / RAF-DB layout
- file, then one column per label with the counted votes (excluded participants and gold items left out)

## soft_labels.csv — training targets for `python -m ml.train --soft-labels soft_labels.csv`
- image: the image's path under MEDIA_ROOT (pass --soft-labels-root MEDIA_ROOT to ml.train); file: its original name
- n_votes: counted votes; p_<label>: the human distribution (images without votes left out)

## distributions_<method>.csv — one human distribution per image, by an aggregation method
- methods: raw (vote shares), majority (tied labels share equally), ferplus (FER+ probability mode: single
  votes dropped as outliers, top labels kept up to 75% coverage), dawid_skene, glad, mace (crowd-kit: the
  posterior of one true label per image, from each voter's estimated reliability; near one-hot)
- file, n_votes; p_<label>: the distribution (empty when n_votes is 0)
- glad and mace are left out of all.zip (slow on large studies); download them one by one
"""


FACES_NOTE = """
## Face columns (stimuli.csv, votes.csv, predictions.csv) — images cut out of photos
This study detects faces in uploaded photos and imports each face as one image (a square crop of the face box
plus 20% margin on every side). The last columns of stimuli.csv, votes.csv and predictions.csv say where each
image came from; they are empty for images imported as they were.
- source_photo: the uploaded photo's name (its path inside the zip or folder)
- face_index: the face's number in that photo, in reading order (rows top to bottom, each left to right)
- face_x, face_y, face_w, face_h: the detector's face box in the photo's pixels (x, y = top-left corner), in
  the photo as displayed (after its EXIF orientation)
- face_score: the detector's confidence (RetinaFace-mobilenet0.25; faces under 0.9 are not imported)
- face_crop: square (unaligned, as FER2013-style models were trained), aligned (rotated so the eyes are level)
  or whole (a photo with no face, imported whole because the researcher asked for it)
A manifest row names a photo; its label, valence/arousal and gold flag were given to every face of that photo.
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


def _votes_queryset(study: Study, include_test: bool = False):
    # The position comes from the matching assignment through an indexed subquery, not a Python dict,
    # so memory stays flat with a million votes.
    position = Assignment.objects.filter(participant=OuterRef("participant_id"), stimulus=OuterRef("stimulus_id"))
    votes = Vote.objects.filter(stimulus__study=study)
    if not include_test:
        votes = votes.filter(participant__is_test=False)
    return votes.order_by("pk").annotate(position=Subquery(position.values("position")[:1]))


def _too_fast(study: Study, response_ms: int) -> int:
    return int(bool(study.fast_response_ms) and response_ms < study.fast_response_ms)


def votes_rows(study: Study, include_test: bool = False, faces: bool = False) -> Iterator[list]:
    """One row per vote, formatted in Python (any database); `faces` adds the face columns."""
    rows = _votes_queryset(study, include_test).values_list(
        "participant__public_id", "participant__external_ids", "stimulus__public_id", "stimulus__original_name",
        "label", "response_ms", "position", "stimulus__is_gold", "participant__excluded", "created_at",
        "participant__is_simulated", "participant__is_test", "stimulus__metadata")
    for (participant, external, stimulus, name, label, ms, place, gold, excluded, created, simulated,
         is_test, metadata) in rows.iterator(chunk_size=CHUNK):
        external = external or {}
        row = [participant, external.get("PROLIFIC_PID", ""), external.get("STUDY_ID", ""),
               external.get("SESSION_ID", ""), json.dumps(external, sort_keys=True), stimulus, name, label, ms,
               "" if place is None else place, int(gold), int(excluded), _iso(created), int(simulated),
               _too_fast(study, ms)]
        row = [*row, int(is_test)] if include_test else row
        yield [*row, *face_cells(metadata)] if faces else row


def votes_copy_stream(study: Study, include_test: bool = False, faces: bool = False) -> Iterator[bytes]:
    """votes.csv produced by PostgreSQL itself (COPY ... TO STDOUT WITH CSV), streamed block by block.

    The same columns as votes_rows, formatted in SQL: a million votes export at close to COPY's own
    speed instead of paying Python's per-row cost (see bench/export.py).
    """
    import psycopg

    text, integer = TextField(), IntegerField()
    from django.db.models import Case, When

    queryset = _votes_queryset(study, include_test).annotate(
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
        too_fast=Case(When(response_ms__lt=study.fast_response_ms, then=Value(1)), default=Value(0),
                      output_field=integer),
        is_test=Cast("participant__is_test", integer),
    ).annotate(
        prolific_safe=_neutralise_sql("prolific_pid"), study_id_safe=_neutralise_sql("study_id_param"),
        session_safe=_neutralise_sql("session_id"), file_safe=_neutralise_sql("stimulus__original_name"),
        label_safe=_neutralise_sql("label"),
    )
    columns = ["participant_text", "prolific_safe", "study_id_safe", "session_safe", "external_text",
               "stimulus_text", "file_safe", "label_safe", "response_ms", "position", "gold",
               "excluded", "created_text", "simulated", "too_fast"]
    face_columns = []
    if faces:  # the metadata's values as text (->>), the text ones made formula-safe like the rest
        queryset = queryset.annotate(**{f"meta_{name}": Coalesce(KeyTextTransform(name, "stimulus__metadata"),
                                                                 Value(""), output_field=text)
                                        for name in FACE_COLUMNS})
        queryset = queryset.annotate(**{f"safe_{name}": _neutralise_sql(f"meta_{name}")
                                        for name in ("source_photo", "face_crop")})
        face_columns = [f"safe_{name}" if name in ("source_photo", "face_crop") else f"meta_{name}"
                        for name in FACE_COLUMNS]
    queryset = queryset.values_list(*columns, *(["is_test"] if include_test else []), *face_columns)
    sql, params = queryset.query.sql_with_params()
    connection.ensure_connection()
    statement = psycopg.ClientCursor(connection.connection).mogrify(sql, params)
    yield _csv_line([neutralise_cell(cell) for cell in votes_header(include_test, faces)])
    with connection.connection.cursor() as cursor:
        with cursor.copy(f"COPY ({statement}) TO STDOUT WITH (FORMAT csv)") as copy:
            for block in copy:
                yield bytes(block)


def _csv_line(values: list) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue().encode()


VOTES_HEADER = ["participant", "prolific_pid", "study_id", "session_id", "external_ids", "stimulus", "file", "label",
                "response_ms", "position", "is_gold", "participant_excluded", "created_at", "is_simulated", "too_fast"]


def votes_header(include_test: bool = False, faces: bool = False) -> list[str]:
    header = [*VOTES_HEADER, "participant_is_test"] if include_test else VOTES_HEADER
    return [*header, *FACE_COLUMNS] if faces else header


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


def stimuli_rows(study: Study, faces: bool = False) -> Iterator[list]:
    labels = _labels(study)
    others = list(study.label_set.non_emotion_labels)
    counts = _counts_by_stimulus(study, labels)
    other_counts = _counts_by_stimulus(study, others) if others else {}
    for s in Stimulus.objects.filter(study=study).order_by("pk").iterator(chunk_size=CHUNK):
        c = counts.get(s.pk, [0] * len(labels))
        n = sum(c)
        shares = [f"{v / n:.6f}" for v in c] if n else [""] * len(labels)
        entropy = f"{float(metrics.normalised_entropy([v / n for v in c])):.6f}" if n else ""
        yield [s.public_id, s.original_name, s.sha256, s.width, s.height, s.source, int(s.is_gold), s.ground_truth,
               "" if s.valence is None else s.valence, "" if s.arousal is None else s.arousal, *c, n, *shares, entropy,
               *other_counts.get(s.pk, [0] * len(others)), *(face_cells(s.metadata) if faces else [])]


def stimuli_header(labels: list[str], others: list[str] | tuple = (), faces: bool = False) -> list[str]:
    return (["stimulus", "file", "sha256", "width", "height", "source", "is_gold", "ground_truth", "valence",
             "arousal"] + [f"votes_{name}" for name in labels] + ["n_votes"] + [f"p_{name}" for name in labels]
            + ["human_entropy"] + [f"other_{name}" for name in others] + (FACE_COLUMNS if faces else []))


PARTICIPANTS_HEADER = ["participant", "prolific_pid", "study_id", "session_id", "external_ids", "user_agent_family",
                       "device_type", "started_at", "consented_at", "finished_at", "n_votes", "n_too_fast",
                       "gold_answered", "gold_correct", "gold_score", "excluded", "exclusion_reason", "is_test",
                       "is_simulated"]


def participants_rows(study: Study, include_test: bool = False) -> Iterator[list]:
    people = Participant.objects.filter(study=study)
    if not include_test:
        people = people.filter(is_test=False)
    fast = Q(votes__response_ms__lt=study.fast_response_ms) if study.fast_response_ms else Q(pk__in=[])
    people = people.annotate(n_votes=Count("votes"), n_too_fast=Count("votes", filter=fast)).order_by("pk")
    for p in people.iterator(chunk_size=CHUNK):
        external = p.external_ids or {}
        yield [p.public_id, external.get("PROLIFIC_PID", ""), external.get("STUDY_ID", ""),
               external.get("SESSION_ID", ""), json.dumps(external, sort_keys=True), p.user_agent_family,
               p.device_type, _iso(p.started_at), _iso(p.consented_at), _iso(p.finished_at), p.n_votes, p.n_too_fast,
               p.gold_answered, p.gold_correct, "" if p.gold_score is None else p.gold_score, int(p.excluded),
               p.exclusion_reason, int(p.is_test), int(p.is_simulated)]


LIST_SEPARATOR = ";"


def _missing_by_model(study: Study) -> dict[int, str]:
    """Each predicting model's missing study labels as one cell (one query over the models, not the rows)."""
    labels = _labels(study)
    return {pk: LIST_SEPARATOR.join(missing_study_labels(model_classes=classes, study_labels=labels))
            for pk, classes in ModelVersion.objects.filter(predictions__stimulus__study=study).distinct()
            .values_list("pk", "classes")}


def predictions_rows(study: Study, faces: bool = False) -> Iterator[list]:
    missing = _missing_by_model(study)
    rows = (Prediction.objects.filter(stimulus__study=study).order_by("stimulus_id", "model_version__name")
            .values_list("stimulus__public_id", "stimulus__original_name", "model_version__name",
                         "model_version__arch", "distribution", "dropped_mass", "ambiguity", "valence", "arousal",
                         "model_version_id", "stimulus__metadata"))
    for (sid, name, model, arch, dist, dropped, ambiguity, valence, arousal,
         model_id, metadata) in rows.iterator(chunk_size=CHUNK):
        yield [sid, name, model, arch, *[format_float32(p) for p in dist], format_float32(dropped),
               format_float32(ambiguity),
               "" if valence is None else valence, "" if arousal is None else arousal, missing.get(model_id, ""),
               *(face_cells(metadata) if faces else [])]


SUMMARY_HEADER = ["label_scope", "source", "kind", "model_id", "n_images", *metrics.SUMMARY_FIELDS,
                  *[f"of_ceiling_{name}" for name in metrics.SUMMARY_FIELDS], "missing_labels", "labels_scored",
                  "only_missing_images"]


def _summary_row(row: dict, label_scope: str, labels: list[str]) -> list:
    kind = "ceiling" if row.get("ceiling") else "imported_source" if row.get("source") else "model"
    fraction = row.get("fraction") or {}
    return [label_scope, row["name"], kind, "" if row.get("model_id") is None else row["model_id"], row["n_images"],
            *[format_float32(row.get(name)) for name in metrics.SUMMARY_FIELDS],
            *[format_float32(fraction.get(name)) for name in metrics.SUMMARY_FIELDS],
            LIST_SEPARATOR.join(row.get("missing_labels") or []),
            LIST_SEPARATOR.join(row.get("labels_scored") or labels), row.get("only_missing_images") or 0]


def summary_rows(study: Study) -> Iterator[list]:
    """The comparison page's summary over the live votes (vote shares) in both label scopes: every row with
    all labels, then the model rows over each model's shared labels (study.selectors.compare.model_summaries)."""
    data = comparison_data(study=study)
    for label_scope in ("all", "shared"):
        for row in model_summaries(data, label_scope=label_scope):
            if label_scope == "all" or row["model_id"] is not None:
                yield _summary_row(row, label_scope, data.labels)


def distributions_rows(study: Study) -> Iterator[list]:
    labels = _labels(study)
    counts = _counts_by_stimulus(study, labels, include_gold=False)
    for pk, name in Stimulus.objects.filter(study=study, is_gold=False).order_by("pk").values_list(
            "pk", "original_name").iterator(chunk_size=CHUNK):
        yield [name, *counts.get(pk, [0] * len(labels))]


def _regular_stimuli(study: Study) -> list[tuple[int, str, str]]:
    return list(Stimulus.objects.filter(study=study, is_gold=False).order_by("pk").values_list(
        "pk", "original_name", "image"))


def aggregated_rows(study: Study, method: str) -> Iterator[list]:
    labels = _labels(study)
    stimuli = _regular_stimuli(study)
    ids = [pk for pk, _, _ in stimuli]
    shares = aggregated_distributions(study=study, method=method, stimulus_ids=ids, labels=labels)
    counts = _counts_by_stimulus(study, labels, include_gold=False)
    for (pk, name, _), row in zip(stimuli, shares, strict=True):
        n = sum(counts.get(pk, []))
        yield [name, n, *(["" for _ in labels] if not n else [format_float32(v) for v in row])]


def soft_label_rows(study: Study) -> Iterator[list]:
    """Images with at least one counted vote: the training targets of `python -m ml.train --soft-labels`."""
    labels = _labels(study)
    counts = _counts_by_stimulus(study, labels, include_gold=False)
    for pk, name, image in _regular_stimuli(study):
        c = counts.get(pk)
        n = sum(c) if c else 0
        if n:
            yield [image, name, n, *[format_float32(v / n) for v in c]]


def stream(study: Study, name: str, include_test: bool = False) -> Iterator[bytes]:
    """One export file. Test participants (previews) are left out unless include_test."""
    labels = _labels(study)
    if name in AGGREGATED_FILES:
        return _csv_stream(["file", "n_votes", *[f"p_{label}" for label in labels]],
                           aggregated_rows(study, AGGREGATED_FILES[name]))
    if name == "soft_labels.csv":
        return _csv_stream(["image", "file", "n_votes", *[f"p_{label}" for label in labels]], soft_label_rows(study))
    if name == "votes.csv":
        faces = has_face_columns(study)
        if connection.vendor == "postgresql":
            return votes_copy_stream(study, include_test, faces)
        return _csv_stream(votes_header(include_test, faces), votes_rows(study, include_test, faces))
    if name == "stimuli.csv":
        faces = has_face_columns(study)
        return _csv_stream(stimuli_header(labels, list(study.label_set.non_emotion_labels), faces),
                           stimuli_rows(study, faces))
    if name == "participants.csv":
        return _csv_stream(PARTICIPANTS_HEADER, participants_rows(study, include_test))
    if name == "predictions.csv":
        faces = has_face_columns(study)
        header = ["stimulus", "file", "model", "model_arch", *[f"p_{name}" for name in labels], "dropped_mass",
                  "ambiguity", "valence", "arousal", "missing_labels", *(FACE_COLUMNS if faces else [])]
        return _csv_stream(header, predictions_rows(study, faces))
    if name == "summary.csv":
        return _csv_stream(SUMMARY_HEADER, summary_rows(study))
    if name == "distributions.csv":
        return _csv_stream(["file", *labels], distributions_rows(study))
    if name == "codebook.md":
        non_emotion = ", ".join(study.label_set.non_emotion_labels) or "none in this label set"
        test_note = "included in this export (participant_is_test marks them)" if include_test else (
            "left out of this export")
        simulated_note = ("; simulated participants count" if study.include_simulated
                          else " and simulated participants (the study leaves them out)")
        return iter([CODEBOOK.format(title=study.title, slug=study.slug, label_set=study.label_set.name,
                                     labels=", ".join(labels), non_emotion=non_emotion, test_note=test_note,
                                     fast_ms=study.fast_response_ms, simulated_note=simulated_note,
                                     faces_note=FACES_NOTE if has_face_columns(study) else "").encode()])
    raise KeyError(name)


AGGREGATED_FILES = {f"distributions_{method}.csv": method for method in aggregation.METHODS}
EXPORT_FILES = ["votes.csv", "stimuli.csv", "participants.csv", "predictions.csv", "summary.csv", "distributions.csv",
                "soft_labels.csv", *AGGREGATED_FILES, "codebook.md"]
SLOW_FILES = {"distributions_glad.csv", "distributions_mace.csv"}  # minutes on big studies: download one by one


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


def zip_stream(study: Study, include_test: bool = False) -> Iterator[bytes]:
    """All export files in one zip, streamed (zipfile writes to a non-seekable sink)."""
    sink = _ZipSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in (n for n in EXPORT_FILES if n not in SLOW_FILES):
            with archive.open(f"{study.slug}/{name}", "w", force_zip64=True) as member:
                for chunk in stream(study, name, include_test):
                    member.write(chunk)
                    if len(sink.chunks) > 16:
                        yield sink.take()
            yield sink.take()
    yield sink.take()
