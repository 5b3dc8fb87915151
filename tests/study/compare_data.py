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
