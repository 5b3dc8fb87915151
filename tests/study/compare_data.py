"""Bulk-built studies with votes and predictions, and training-run λ exports, for comparison tests."""
import numpy as np

from study.models import Participant, Prediction, Vote
from tests.factories import ModelVersionFactory, StimulusFactory, StudyFactory


def build_study(*, images: int, voters: int, models: int = 2, seed: int = 0, owner=None):
    rng = np.random.default_rng(seed)
    study = StudyFactory(**({"owner": owner} if owner else {}))
    labels = study.label_set.labels
    stimuli = StimulusFactory.create_batch(images, study=study)
    people = Participant.objects.bulk_create(
        [Participant(study=study, token=f"{study.slug}-{i}") for i in range(voters)])
    truth = rng.dirichlet(np.ones(len(labels)) * 0.5, images)
    Vote.objects.bulk_create([
        Vote(participant=p, stimulus=s, label=labels[rng.choice(len(labels), p=truth[j])], response_ms=700)
        for j, s in enumerate(stimuli) for p in people])
    versions = [ModelVersionFactory(classes=labels) for _ in range(models)]
    Prediction.objects.bulk_create([
        Prediction(stimulus=s, model_version=m, distribution=list(rng.dirichlet(np.ones(len(labels)))), ambiguity=0.5)
        for s in stimuli for m in versions])
    return study, versions


def lambdas_csv(lams, flipped) -> str:
    """A training run's lambdas.csv in the layout ml.train writes (ml/train.py _write_lambdas)."""
    rows = ["index,path,given_label,original_label,flipped,lambda"]
    rows += [f"{i},train/img_{i}.png,Fear,{'Anger' if f else 'Fear'},{int(f)},{lam:.6f}"
             for i, (lam, f) in enumerate(zip(lams, flipped, strict=False))]
    return "\n".join(rows) + "\n"


def attach_lambda_export(model, text: str) -> None:
    from django.core.files.base import ContentFile

    model.lambda_export.save("lambdas.csv", ContentFile(text.encode()), save=True)


# A 7-class model on an 8-label study (AffectNet order, Contempt last), with votes worked out by hand in
# tests/study/analysis/test_label_coverage.py: image 2's votes are all Contempt.
COVERAGE_VOTES = [{"Happiness": 2, "Contempt": 2}, {"Contempt": 3}, {"Sadness": 1, "Anger": 1},
                  {"Neutral": 1, "Happiness": 1, "Contempt": 2}]
COVERAGE_SEVEN = [{"Happiness": 1.0}, {"Neutral": 1.0}, {"Sadness": 0.5, "Anger": 0.5},
                  {"Neutral": 0.8, "Happiness": 0.2}]


def build_coverage_study(*, owner=None):
    """An 8-label study with 4 voted images, a 7-class model lacking Contempt and an 8-class model (uniform)."""
    from ml.labels import AFFECTNET7, AFFECTNET8
    from tests.factories import LabelSetFactory

    label_set = LabelSetFactory(name="Coverage test 8", labels=AFFECTNET8)
    study = StudyFactory(label_set=label_set, **({"owner": owner} if owner else {}))
    stimuli = [StimulusFactory(study=study) for _ in COVERAGE_VOTES]
    people = Participant.objects.bulk_create([Participant(study=study, token=f"{study.slug}-{i}") for i in range(4)])
    Vote.objects.bulk_create([
        Vote(participant=people[j], stimulus=stimulus, label=label, response_ms=700)
        for stimulus, votes in zip(stimuli, COVERAGE_VOTES, strict=True)
        for j, label in enumerate(label for label, n in votes.items() for _ in range(n))])
    seven = ModelVersionFactory(name="fer7", classes=AFFECTNET7, owner=study.owner)  # one user: hashing is slow
    eight = ModelVersionFactory(name="full8", classes=AFFECTNET8, owner=study.owner)
    Prediction.objects.bulk_create(
        [Prediction(stimulus=s, model_version=seven, ambiguity=0.5,
                    distribution=[probs.get(label, 0.0) for label in AFFECTNET8])
         for s, probs in zip(stimuli, COVERAGE_SEVEN, strict=True)]
        + [Prediction(stimulus=s, model_version=eight, distribution=[1 / 8] * 8, ambiguity=1.0) for s in stimuli])
    return study, seven, eight
