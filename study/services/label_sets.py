"""Label sets made by researchers: emotion names in order, optional non-emotion answers, keyboard keys.

Non-emotion answers (FER+'s "Unknown" and "Not a face") are offered to participants after the
emotions; the metrics leave them out of the emotion distributions and report them as counts.
Keys are one character each (a letter or digit), unique within the set; left blank, the answers get
1, 2, ... 9, 0 in order. A label set that a study uses is never changed (studies keep their meaning):
make a new one instead.
"""
from __future__ import annotations

from collections.abc import Sequence

from django.db import transaction

from study.errors import InvalidInput
from study.models import LabelSet

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
    name = (name or "").strip()
    if not name:
        raise InvalidInput("Give the label set a name.")
    if len(name) > MAX_NAME:
        raise InvalidInput(f"The label set's name must be at most {MAX_NAME} characters.")
    if LabelSet.objects.filter(name__iexact=name).exists():
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
    cleaned_keys = _clean_keys(keys, len(answers))
    return LabelSet.objects.create(name=name, labels=emotions, non_emotion_labels=others, keys=cleaned_keys,
                                   created_by=created_by)


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
