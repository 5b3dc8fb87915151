"""Label sets made by researchers: emotion names in order, optional non-emotion answers, keyboard keys.

Non-emotion answers (FER+'s "Unknown" and "Not a face") are offered to participants after the
emotions; the metrics leave them out of the emotion distributions and report them as counts.
Keys are one character each (a letter or digit), unique within the set; left blank, the answers get
1, 2, ... 9, 0 in order. Its creator (or a superuser) may edit a label set: rename, reorder, re-key, and
move answers between emotions and non-emotion answers, until a study using it is launched or holds data
(selectors/label_sets.py label_set_lock_reason); from then on only the keys and the set's name may change,
so votes, predictions and ground truths keep their meaning.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from study.errors import InvalidInput, PermissionDenied, SettingLocked
from study.models import LabelSet
from study.selectors.label_sets import label_set_editable_by, label_set_lock_reason

MAX_ANSWERS = 20
MAX_NAME = 64
DEFAULT_KEYS = "1234567890"


def label_set_default_keys(count: int) -> list[str]:
    """1, 2, ... 9, 0 for the first ten answers; no key after that."""
    return [DEFAULT_KEYS[i] if i < len(DEFAULT_KEYS) else "" for i in range(count)]


def label_set_keys(label_set: LabelSet) -> list[str]:
    """The key of each answer (emotions, then non-emotion answers), in order."""
    answers = label_set.answers
    keys = list(label_set.keys or [])
    if len(keys) != len(answers) or not any(keys):
        return label_set_default_keys(len(answers))
    return [str(key) for key in keys]


def _clean_names(names: Sequence[str], what: str) -> list[str]:
    cleaned = [str(name).strip() for name in names if str(name).strip()]
    too_long = [name for name in cleaned if len(name) > MAX_NAME]
    if too_long:
        raise InvalidInput(f"{what} names must be at most {MAX_NAME} characters: {too_long[0][:80]!r}.")
    return cleaned


def label_set_parse_lines(text: str) -> tuple[list[str], list[str]]:
    """'Happiness = h' per line -> (names, keys); a line without '=' gets no explicit key."""
    names, keys = [], []
    for line in (text or "").splitlines():
        if not line.strip():
            continue
        name, _, key = line.partition("=")
        names.append(name.strip())
        keys.append(key.strip())
    return names, keys


@transaction.atomic
def label_set_create(
    *,
    name: str,
    labels: Sequence[str],
    non_emotion_labels: Sequence[str] = (),
    keys: Sequence[str] = (),
    created_by=None,
) -> LabelSet:
    """A new label set. Raises InvalidInput with a message a researcher can act on."""
    name, emotions, others, cleaned_keys = _validated(name=name, labels=labels, non_emotion_labels=non_emotion_labels,
                                                      keys=keys)
    return LabelSet.objects.create(name=name, labels=emotions, non_emotion_labels=others, keys=cleaned_keys,
                                   created_by=created_by)


@transaction.atomic
def label_set_update(
    *,
    label_set: LabelSet,
    by,
    name: str,
    labels: Sequence[str],
    non_emotion_labels: Sequence[str] = (),
    keys: Sequence[str] = (),
) -> LabelSet:
    """Rename, reorder, re-key a label set, or move answers between emotions and non-emotion answers.

    Only its creator or a superuser. Once the set is locked (label_set_lock_reason) the answers must stay as
    they are, in the same order and kind; keys and the set's name may change. Raises PermissionDenied,
    SettingLocked (409) or InvalidInput with the reason; nothing is changed then.
    """
    label_set = LabelSet.objects.select_for_update().get(pk=label_set.pk)
    if not label_set_editable_by(label_set=label_set, user=by):
        raise PermissionDenied(f"Only the label set's creator{'' if label_set.created_by_id else ' (here: an admin)'} "
                               f"may edit “{label_set.name}”; make a new label set from it instead.")
    name, emotions, others, cleaned_keys = _validated(name=name, labels=labels, non_emotion_labels=non_emotion_labels,
                                                      keys=keys, exclude_pk=label_set.pk)
    if emotions != list(label_set.labels) or others != list(label_set.non_emotion_labels):
        reason = label_set_lock_reason(label_set=label_set)
        if reason:
            raise SettingLocked(reason)
    label_set.name, label_set.labels, label_set.non_emotion_labels, label_set.keys = name, emotions, others, cleaned_keys
    label_set.save(update_fields=["name", "labels", "non_emotion_labels", "keys"])
    return label_set


def _validated(*, name: str, labels: Sequence[str], non_emotion_labels: Sequence[str], keys: Sequence[str],
               exclude_pk: int | None = None) -> tuple[str, list[str], list[str], list[str]]:
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Give the label set a name.")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"The label set's name must be at most {MAX_NAME} characters.")
    if LabelSet.objects.filter(name__iexact=name).exclude(pk=exclude_pk).exists():
        raise InvalidInput(f"A label set named {name!r} already exists.")
    emotions = _clean_names(labels, "Emotion")
    others = _clean_names(non_emotion_labels, "Answer")
    if len(emotions) < 2:
        raise InvalidInput("A label set needs at least two emotions.")
    answers = [*emotions, *others]
    if len(answers) > MAX_ANSWERS:
        raise InvalidInput(f"At most {MAX_ANSWERS} answers per label set (got {len(answers)}).")
    seen: dict[str, str] = {}
    for answer in answers:
        if answer.casefold() in seen:
            raise InvalidInput(f"{answer!r} appears twice; every answer must be different.")
        seen[answer.casefold()] = answer
    return name, emotions, others, _clean_keys(keys, len(answers))


def label_set_lines(label_set: LabelSet) -> tuple[str, str]:
    """The set as the form's two text boxes ('Happiness = h' per line): emotions, then non-emotion answers."""
    keys = label_set_keys(label_set) if label_set.keys else [""] * len(label_set.answers)
    lines = [f"{answer} = {key}" if key else answer for answer, key in zip(label_set.answers, keys, strict=True)]
    count = len(label_set.labels)
    return "\n".join(lines[:count]), "\n".join(lines[count:])


def _clean_keys(keys: Sequence[str], count: int) -> list[str]:
    given = [str(key or "").strip().lower() for key in keys][:count]
    given += [""] * (count - len(given))
    if not any(given):
        return []  # all default
    if not all(given):
        raise InvalidInput("Give every answer a key, or none (then they get 1, 2, 3, ...).")
    bad = [key for key in given if len(key) != 1 or not key.isalnum()]
    if bad:
        raise InvalidInput(f"Keys must be single letters or digits; not {bad[0]!r}.")
    repeated = sorted({key for key in given if given.count(key) > 1})
    if repeated:
        raise InvalidInput(f"The key {repeated[0]!r} is used for more than one answer.")
    return given
