"""Per-participant quality for the participants page: agreement with the rest of the crowd (leave one
out), with each model, Dawid-Skene confusion and skill, response times (study.analysis.aggregation).

All of a study's votes on regular images are read in one query, *including* excluded participants (so an
excluded voter can be judged and brought back); the crowd that each voter is compared with is everyone on
the same image, excluded or not, which is what "agreement with the rest of the crowd" should mean when
deciding whom to exclude.
"""
from __future__ import annotations

import numpy as np

from study.analysis import aggregation
from study.models import Participant, Stimulus, Study, Vote
from study.selectors.compare import comparison_data


def participant_quality(*, study: Study) -> dict:
    """-> {"rows": [one dict per participant with votes], "labels": [...], "models": [names]}."""
    labels = list(study.label_set.labels)
    column = {label: k for k, label in enumerate(labels)}
    stimulus_ids = list(Stimulus.objects.filter(study=study, is_gold=False).order_by("pk").values_list("pk", flat=True))
    row_of = {pk: i for i, pk in enumerate(stimulus_ids)}
    task, worker, label, response = [], [], [], []
    for stimulus_id, participant_id, name, ms in (Vote.objects.filter(stimulus__study=study, stimulus__is_gold=False)
                                                  .order_by("pk").values_list("stimulus_id", "participant_id",
                                                                              "label", "response_ms")):
        if name in column:
            task.append(row_of[stimulus_id]), worker.append(participant_id), label.append(column[name])
            response.append(ms)
    votes = aggregation.Votes.from_lists(task, np.asarray(worker, dtype=np.int64), label,
                                         n_tasks=len(stimulus_ids), n_labels=len(labels))
    loo = aggregation.leave_one_out_agreement(votes)
    skill = aggregation.dawid_skene_quality(votes) if len(task) else {}
    times = aggregation.response_time_profile(np.asarray(worker, dtype=np.int64), np.asarray(response))
    data = comparison_data(study=study)
    by_model = {c.model.name: aggregation.model_agreement(votes, np.where(c.has[:, None], c.probs, np.nan))
                for c in data.models}
    n_votes = dict(zip(*np.unique(np.asarray(worker, dtype=np.int64), return_counts=True), strict=True))
    rows = []
    for participant in Participant.objects.filter(study=study, pk__in=list(loo)).order_by("started_at"):
        pk = participant.pk
        quality = skill.get(pk, {})
        rows.append({
            "participant": participant, "n_votes": int(n_votes.get(pk, 0)), "loo": loo.get(pk),
            "skill": quality.get("skill"), "confusion": quality.get("confusion"),
            "models": {name: agreement.get(pk, {}) for name, agreement in by_model.items()},
            # simulated participants' votes carry no measured time (response_ms 0): no response-time figures
            "rt": {} if participant.is_simulated else times.get(pk, {}), "gold_score": participant.gold_score,
        })
    return {"rows": rows, "labels": labels, "models": sorted(by_model)}
