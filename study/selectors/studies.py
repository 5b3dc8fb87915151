"""Reads for the researcher pages: which studies a user may see, and their progress numbers, in SQL.

Kept beside study/selectors.py (the participant side) so both can grow without stepping on each other.
"Valid" votes are those of participants who are not excluded; "regular" images are the non-gold ones.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce

from study.models import Participant, Stimulus, Study, Vote
from study.selectors.access import studies_readable_by, studies_visible_to
from study.selectors.participants import held_assignments

__all__ = ["count_subquery", "stimuli_with_vote_counts", "studies_readable_by", "studies_visible_to",
           "study_dashboard", "study_list_with_progress"]


def count_subquery(queryset: QuerySet, field: str) -> Coalesce:
    """A correlated COUNT subquery on `field` = the outer row (no row blow-up when several are combined)."""
    counted = queryset.filter(**{field: OuterRef("pk")}).order_by().values(field).annotate(n=Count("pk")).values("n")
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def study_list_with_progress(*, user) -> QuerySet[Study]:
    """The user's studies with n_images, n_gold, n_participants and n_votes (valid votes on regular images)."""
    return studies_visible_to(user).annotate(
        n_images=count_subquery(Stimulus.objects.filter(is_gold=False), "study"),
        n_gold=count_subquery(Stimulus.objects.filter(is_gold=True), "study"),
        n_participants=count_subquery(Participant.objects.filter(is_simulated=False, is_test=False), "study"),
        n_votes=count_subquery(Vote.objects.filter(stimulus__is_gold=False, participant__excluded=False,
                                                   participant__is_simulated=False), "stimulus__study"),
        n_simulated_votes=count_subquery(Vote.objects.filter(stimulus__is_gold=False, participant__is_simulated=True),
                                         "stimulus__study"),
    )


def stimuli_with_vote_counts(*, study: Study) -> QuerySet[Stimulus]:
    """The study's stimuli annotated with n_votes (valid votes of real participants: the quota), fewest first,
    and n_simulated (votes of a simulated panel): the per-image progress table."""
    valid_votes = Vote.objects.filter(participant__excluded=False, participant__is_simulated=False)
    return (
        Stimulus.objects.filter(study=study)
        .annotate(n_votes=count_subquery(valid_votes, "stimulus"),
                  n_simulated=count_subquery(Vote.objects.filter(participant__is_simulated=True), "stimulus"))
        .order_by("is_gold", "n_votes", "id")
    )


@dataclass(frozen=True)
class HistogramBar:
    label: str
    images: int
    share: float  # of all regular images, for the bar width


@dataclass(frozen=True)
class StudyDashboard:
    images: int
    gold: int
    participants: int
    finished: int
    excluded: int
    votes: int  # valid votes of real participants on regular images
    simulated_participants: int
    simulated_votes: int  # votes of simulated participants on regular images
    include_simulated: bool  # the study counts them in the human distributions
    votes_all: int  # every vote stored, gold and excluded included
    votes_wanted: int
    held: int  # places held by participants who have not answered yet (counted apart from votes)
    images_complete: int
    histogram: list[HistogramBar]

    @property
    def percent_complete(self) -> int:
        return round(100 * min(self.votes, self.votes_wanted) / self.votes_wanted) if self.votes_wanted else 0


def study_dashboard(*, study: Study) -> StudyDashboard:
    """Headline counts and a histogram of valid votes per regular image (last bar: complete)."""
    images = Stimulus.objects.filter(study=study).aggregate(
        regular=Count("pk", filter=Q(is_gold=False)), gold=Count("pk", filter=Q(is_gold=True))
    )
    people = Participant.objects.filter(study=study, is_test=False).aggregate(  # previews never count
        participants=Count("pk", filter=Q(is_simulated=False)),
        finished=Count("pk", filter=Q(finished_at__isnull=False, is_simulated=False)),
        excluded=Count("pk", filter=Q(excluded=True)),
        simulated_participants=Count("pk", filter=Q(is_simulated=True)),
    )
    votes = Vote.objects.filter(stimulus__study=study, participant__is_test=False).aggregate(
        all=Count("pk"),
        valid=Count("pk", filter=Q(stimulus__is_gold=False, participant__excluded=False, participant__is_simulated=False)),
        simulated=Count("pk", filter=Q(stimulus__is_gold=False, participant__is_simulated=True)),
    )
    wanted = study.votes_per_image
    per_count = (
        stimuli_with_vote_counts(study=study).filter(is_gold=False).order_by()
        .values("n_votes").annotate(images=Count("pk")).values_list("n_votes", "images")
    )
    buckets = [0] * (wanted + 1)  # 0, 1, ..., wanted-1 votes, then "wanted or more"
    for n_votes, n_images in per_count:  # at most one row per distinct vote count
        buckets[min(n_votes, wanted)] += n_images
    total = images["regular"]
    histogram = [
        HistogramBar(label=f"{k}" if k < wanted else f"{wanted}+ (complete)", images=n, share=n / total if total else 0.0)
        for k, n in enumerate(buckets)
    ]
    held = held_assignments().filter(stimulus__study=study, stimulus__is_gold=False).count()
    return StudyDashboard(
        images=total, gold=images["gold"], votes=votes["valid"], votes_all=votes["all"], votes_wanted=total * wanted,
        held=held,
        simulated_votes=votes["simulated"], include_simulated=study.include_simulated,
        images_complete=buckets[wanted], histogram=histogram, **people,
    )


def study_image_domain(*, study: Study) -> str:
    """"synthetic" when every image came from the synthetic-face generator, "photo" otherwise ("" if none)."""
    counts = study.stimuli.aggregate(images=Count("pk"), photos=Count("pk", filter=~Q(source__startswith="synthetic")))
    if not counts["images"]:
        return ""
    return "photo" if counts["photos"] else "synthetic"


def domain_warning(*, model_domain: str, image_domain: str) -> str:
    """The sentence a page shows when a model meets images unlike its training data ("" when they agree)."""
    if not model_domain or not image_domain or model_domain == image_domain:
        return ""
    if model_domain == "synthetic":
        return "trained on synthetic faces, but these images are photographs: expect it to be unreliable here"
    return "trained on photographs, but these images are synthetic faces: expect it to be unreliable here"
