"""Studies: creation, the status life cycle, and researcher decisions about participants.

Status rules (enforced by study_set_status):

    draft  -> live | closed          a draft has never been shown to anyone
    live   -> paused | closed
    paused -> live | closed
    closed -> paused | live          only with reopen=True: closing is final unless reopened on purpose

- Going live needs at least one regular (non-gold) image: gold items alone give nothing to measure.
- Nothing goes back to draft: once a study was live, its votes exist and "draft" would hide that.
- Setting the status a study already has changes nothing (a double-clicked button is harmless).
"""
from __future__ import annotations

import random
import re
from collections.abc import Iterable

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import QuerySet
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from study.errors import InvalidInput, InvalidStatusChange
from study.models import LabelSet, Participant, Stimulus, Study

Status = Study.Status
TRANSITIONS: dict[str, set[str]] = {
    Status.DRAFT: {Status.LIVE, Status.CLOSED},
    Status.LIVE: {Status.PAUSED, Status.CLOSED},
    Status.PAUSED: {Status.LIVE, Status.CLOSED},
    Status.CLOSED: set(),
}
REOPEN_TARGETS = {Status.PAUSED, Status.LIVE}
RESERVED_SLUGS = {"new", "label-sets"}  # /studies/new/ and /studies/label-sets/ are pages
URL_PARAMETER_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]{0,63}$")

DEFAULT_CONSENT_TEXT = _(
    "You are invited to take part in a research study on how people perceive emotions in faces. "
    "You will see a series of face images and choose, for each one, the emotion it shows most clearly. "
    "It takes about 5 minutes. Taking part is voluntary and you may stop at any time by closing the page. "
    "We record only your answers, how long each took, and the identifiers in the link that brought you here; "
    "no name, e-mail or IP address is stored. The answers are used for research and may be published in "
    "aggregate form. By clicking \"I agree\" you confirm that you are at least 18 years old and agree to take part."
)
DEFAULT_INSTRUCTIONS_TEXT = _(
    "For each face, choose the emotion that is expressed most clearly. "
    "There are no right or wrong answers for most images, so go with your first impression; a few "
    "images are easy checks of attention. Each choice is final, and the next face appears at once."
)


def default_text(text, language: str) -> str:
    """A default text (lazy translation) in `language`."""
    with translation.override(language):
        return str(text)


def _check_settings(*, votes_per_image: int, images_per_participant: int, gold_rate: float,
                    gold_pass_threshold: float, allocation: str = Study.Allocation.FIXED, min_votes_per_image: int = 3,
                    max_votes_per_image: int = 30, stability_threshold: float = 0.02) -> None:
    if votes_per_image < 1:
        raise InvalidInput("Votes per image must be at least 1.")
    if allocation not in Study.Allocation.values:
        raise InvalidInput(f"Allocation is one of {', '.join(Study.Allocation.values)}.")
    if not 1 <= min_votes_per_image <= max_votes_per_image:
        raise InvalidInput("Adaptive allocation needs 1 <= minimum votes per image <= maximum votes per image.")
    if not 0.0 < stability_threshold < 1.0:
        raise InvalidInput("The stability threshold is an expected JS divergence: above 0 and below 1.")
    if images_per_participant < 1:
        raise InvalidInput("Images per participant must be at least 1.")
    if not 0.0 <= gold_rate < 1.0:
        raise InvalidInput("The gold rate must be at least 0 and below 1.")
    if not 0.0 <= gold_pass_threshold <= 1.0:
        raise InvalidInput("The gold pass threshold must be between 0 and 1.")


def study_clean_url_parameters(names: Iterable[str]) -> list[str]:
    """Strip, drop blanks and repeats; raise InvalidInput for names that cannot be URL parameters."""
    cleaned = list(dict.fromkeys(str(name).strip() for name in names if str(name).strip()))
    bad = [name for name in cleaned if not URL_PARAMETER_NAME.match(name)]
    if bad:
        raise InvalidInput(f"Not valid URL parameter names: {', '.join(bad)} (letters, digits, _ . - only).")
    return cleaned


@transaction.atomic
def study_create(
    *,
    owner,
    title: str,
    slug: str,
    label_set: LabelSet,
    votes_per_image: int = 10,
    images_per_participant: int = 20,
    gold_rate: float = 0.1,
    gold_pass_threshold: float = 0.75,
    shuffle_labels: bool = False,
    consent_text: str = "",
    instructions_text: str = "",
    completion_url: str = "",
    url_parameters: Iterable[str] = (),
    random_seed: int | None = None,
    finish_when_paused: bool = True,
    fast_response_ms: int = 300,
    language: str = "en",
    allocation: str = Study.Allocation.FIXED,
    min_votes_per_image: int = 3,
    max_votes_per_image: int = 30,
    stability_threshold: float = 0.02,
    face_crop: str = Study.FaceCrop.OFF,
) -> Study:
    """A new draft study owned by `owner`. Blank consent/instruction texts get defaults in the study's language."""
    if language not in dict(settings.LANGUAGES):
        raise InvalidInput(f"Unknown language {language!r}; one of: {', '.join(dict(settings.LANGUAGES))}.")
    slug = slug.strip().lower()
    if slug in RESERVED_SLUGS:
        raise InvalidInput(f"The slug {slug!r} is reserved; choose another.")
    if Study.objects.filter(slug=slug).exists():
        raise InvalidInput(f"A study with the slug {slug!r} already exists.")
    _check_settings(votes_per_image=votes_per_image, images_per_participant=images_per_participant,
                    gold_rate=gold_rate, gold_pass_threshold=gold_pass_threshold, allocation=allocation,
                    min_votes_per_image=min_votes_per_image, max_votes_per_image=max_votes_per_image,
                    stability_threshold=stability_threshold)
    study = Study(
        allocation=allocation, min_votes_per_image=min_votes_per_image, max_votes_per_image=max_votes_per_image,
        stability_threshold=stability_threshold,
        owner=owner, title=title.strip(), slug=slug, label_set=label_set, status=Status.DRAFT,
        votes_per_image=votes_per_image, images_per_participant=images_per_participant, gold_rate=gold_rate,
        gold_pass_threshold=gold_pass_threshold, shuffle_labels=shuffle_labels,
        consent_text=consent_text.strip() or default_text(DEFAULT_CONSENT_TEXT, language),
        instructions_text=instructions_text.strip() or default_text(DEFAULT_INSTRUCTIONS_TEXT, language),
        finish_when_paused=finish_when_paused, fast_response_ms=fast_response_ms, language=language,
        completion_url=completion_url.strip(), url_parameters=study_clean_url_parameters(url_parameters),
        random_seed=random.randrange(2**31) if random_seed is None else random_seed,
        face_crop=face_crop or Study.FaceCrop.OFF,
    )
    try:
        study.full_clean()
    except ValidationError as exc:
        raise InvalidInput(" ".join(f"{name}: {' '.join(errors)}" for name, errors in exc.message_dict.items())) from None
    study.save()
    return study


@transaction.atomic
def study_set_status(*, study: Study, status: str, reopen: bool = False) -> Study:
    """Move `study` to `status` following the rules in this module's docstring; returns the fresh study."""
    if status not in Status.values:
        raise InvalidInput(f"Unknown status {status!r}; one of {', '.join(Status.values)}.")
    locked = Study.objects.select_for_update().get(pk=study.pk)
    current = locked.status
    if status == current:
        return locked
    if current == Status.CLOSED:
        if not reopen:
            raise InvalidStatusChange("This study is closed. Reopen it explicitly to accept responses again.")
        if status not in REOPEN_TARGETS:
            raise InvalidStatusChange("A closed study can be reopened as paused or live only.")
    elif status not in TRANSITIONS[current]:
        raise InvalidStatusChange(f"A {current} study cannot become {status}.")
    if status == Status.LIVE and not Stimulus.objects.filter(study=locked, is_gold=False).exists():
        raise InvalidStatusChange("Upload at least one image that is not a gold item before launching the study.")
    locked.status = status
    locked.save(update_fields=["status", "updated_at"])
    study.status = locked.status
    return locked


@transaction.atomic
def participants_set_excluded(*, participants: QuerySet[Participant], excluded: bool, reason: str = "") -> int:
    """A researcher's decision to leave participants out of (or bring them back into) the analysis.

    Their votes are kept either way; selectors skip excluded participants. Returns how many changed.
    """
    reason = (reason or ("Excluded by a researcher." if excluded else ""))[:200]
    # Test participants (previews) stay excluded: bringing them in would mix a researcher's clicks into the data.
    return participants.exclude(excluded=excluded).exclude(is_test=True).update(excluded=excluded, exclusion_reason=reason)
