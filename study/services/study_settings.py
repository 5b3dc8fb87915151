"""Editing, cloning and deleting studies: what may change after launch, and what may not.

Rules (enforced here; views show the message of the SettingLocked error as a 409):

- Only while draft: the label set (votes are answers from it), the slug (links are out there), the
  random seed (it fixes every participant's image order) and face cropping on import (a launched study's
  images should not change kind half-way: whole photos beside face crops).
- Not while live: images per participant (participants who started have sequences of the old length;
  pause the study first).
- Votes per image may not go below the most valid votes any regular image already has.
- Everything else (texts, codes, thresholds, language, ...) may change at any time; it applies to
  participants who arrive afterwards.

A clone copies the settings, label set and images (with their labels, VA and gold flags), never
participants or votes, and starts as a draft owned by whoever cloned it. Only drafts can be deleted.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.db import transaction
from django.db.models import Count, Max, Q

from study.errors import InvalidInput, InvalidStatusChange, SettingLocked
from study.i18n import forget_study_language
from study.models import Stimulus, Study
from study.services.stimuli import stimulus_copy
from study.services.studies import _check_settings, study_clean_url_parameters, study_create

Status = Study.Status
DRAFT_ONLY = {"label_set": "label set", "slug": "slug", "random_seed": "random seed",
              "face_crop": "face cropping on import"}
NOT_WHILE_LIVE = {"images_per_participant": "images per participant"}
EDITABLE = {
    "title", "label_set", "slug", "random_seed", "votes_per_image", "images_per_participant", "gold_rate",
    "gold_pass_threshold", "shuffle_labels", "consent_text", "instructions_text", "completion_code",
    "no_consent_code", "screened_out_code", "completion_url", "url_parameters", "finish_when_paused",
    "fast_response_ms", "language", "face_crop",
}
# Settings a clone takes over from its source (beside the label set).
CLONED = [
    "votes_per_image", "images_per_participant", "gold_rate", "gold_pass_threshold", "shuffle_labels",
    "consent_text", "instructions_text", "completion_url", "url_parameters", "finish_when_paused",
    "fast_response_ms", "language", "face_crop",
]


def study_max_votes_per_image(*, study: Study) -> int:
    """The most valid votes (not excluded, not test) any regular image of the study has."""
    result = Stimulus.objects.filter(study=study, is_gold=False).annotate(
        n=Count("votes", filter=Q(votes__participant__excluded=False, votes__participant__is_test=False))
    ).aggregate(most=Max("n"))
    return result["most"] or 0


def study_locked_fields(*, study: Study) -> dict[str, str]:
    """{field: why it cannot change now}, for the edit form to disable those fields."""
    locked = {}
    if study.status != Status.DRAFT:
        for name, label in DRAFT_ONLY.items():
            locked[name] = f"The {label} cannot change once the study has been launched."
    if study.status == Status.LIVE:
        for name, label in NOT_WHILE_LIVE.items():
            locked[name] = f"The {label} cannot change while the study is live; pause it first."
    return locked


@transaction.atomic
def study_update(*, study: Study, changes: Mapping[str, Any]) -> Study:
    """Apply `changes` (field -> new value) to `study` under the rules above; returns the saved study."""
    unknown = set(changes) - EDITABLE
    if unknown:
        raise InvalidInput(f"These settings cannot be edited: {', '.join(sorted(unknown))}.")
    locked_study = Study.objects.select_for_update().get(pk=study.pk)
    changed = {name: value for name, value in changes.items() if getattr(locked_study, name) != value}
    locks = study_locked_fields(study=locked_study)
    for name in changed:
        if name in locks:
            raise SettingLocked(locks[name])
    if "votes_per_image" in changed:
        most = study_max_votes_per_image(study=locked_study)
        if changed["votes_per_image"] < most:
            raise SettingLocked(
                f"Votes per image cannot go below {most}: an image already has {most} valid votes.")
    if "slug" in changed:
        slug = str(changed["slug"]).strip().lower()
        if Study.objects.filter(slug=slug).exclude(pk=study.pk).exists():
            raise InvalidInput(f"A study with the slug {slug!r} already exists.")
        changed["slug"] = slug
    if "url_parameters" in changed:
        changed["url_parameters"] = study_clean_url_parameters(changed["url_parameters"])
    for name, value in changed.items():
        setattr(locked_study, name, value)
    _check_settings(votes_per_image=locked_study.votes_per_image,
                    images_per_participant=locked_study.images_per_participant,
                    gold_rate=locked_study.gold_rate, gold_pass_threshold=locked_study.gold_pass_threshold)
    if not locked_study.title.strip():
        raise InvalidInput("The title cannot be empty.")
    if changed:
        locked_study.save()
        slugs = {study.slug, locked_study.slug}
        transaction.on_commit(lambda: [forget_study_language(slug) for slug in slugs])
    return locked_study


@transaction.atomic
def study_clone(*, study: Study, owner, title: str, slug: str) -> Study:
    """A new draft with `study`'s settings, label set and images (no participants, no votes)."""
    clone = study_create(
        owner=owner, title=title, slug=slug, label_set=study.label_set,
        **{name: getattr(study, name) for name in CLONED},
    )
    for stimulus in Stimulus.objects.filter(study=study).order_by("pk").iterator(chunk_size=500):
        stimulus_copy(stimulus=stimulus, study=clone)
    return clone


@transaction.atomic
def study_delete_draft(*, study: Study) -> None:
    """Delete a draft and its images' files. Launched studies are closed, never deleted, to keep their data."""
    locked = Study.objects.select_for_update().get(pk=study.pk)
    if locked.status != Status.DRAFT:
        raise InvalidStatusChange("Only a draft can be deleted; close a launched study instead (its data is kept).")
    names = [name for name in Stimulus.objects.filter(study=locked).values_list("image", flat=True) if name]
    storage = Stimulus._meta.get_field("image").storage
    locked.delete()
    transaction.on_commit(lambda: [storage.delete(name) for name in names])


def study_launch_warnings(*, study: Study) -> list[str]:
    """Things a researcher should know before (or right after) launching; none of them blocks the launch."""
    counts = Stimulus.objects.filter(study=study).aggregate(
        gold=Count("pk", filter=Q(is_gold=True)), regular=Count("pk", filter=Q(is_gold=False)))
    warnings = []
    if counts["regular"] == 0:
        warnings.append("The study has no images to rate yet: participants would find nothing to do. Upload images "
                        "before you launch.")
    if study.gold_rate > 0 and counts["gold"] == 0:
        warnings.append(
            f"The gold rate is {study.gold_rate:.0%} but the study has no gold items, so participants get no "
            "attention checks. Upload gold items (is_gold in the manifest) or set the gold rate to 0.")
    if 0 < counts["regular"] < study.images_per_participant:
        warnings.append(
            f"Each participant should see {study.images_per_participant} images but the study has only "
            f"{counts['regular']}; participants will see fewer.")
    return warnings
