"""Issue 12, "close the loop": votes -> soft_labels.csv export -> `ml.train --soft-labels` fine-tunes a model
trained on hard labels -> register both -> predict -> the comparison data shows the fine-tuned model closer
to the humans (mean JS) than the model it started from."""
import io

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command

from study import exports
from study.models import ModelVersion, PredictionJob, Study
from study.selectors.compare import comparison_data, model_summaries
from study.services.models import model_version_register
from study.services.predictions import prediction_job_start

# on_commit must fire (eager tasks)
pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


def _train(argv: list[str]) -> dict:
    from ml import train

    return train.main(train.get_args_parser().parse_args(
        [*argv, "--workers", "0", "--no-curves", "--no-progress", "--threads", "1", "--batch-size", "16"]))


def _register_and_predict(path, name: str, study: Study) -> ModelVersion:
    with open(path, "rb") as handle:
        model_version = model_version_register(name=name, handle=handle, filename=path.name, owner=study.owner)
    model_version.refresh_from_db()
    assert model_version.status == "valid", model_version.validation_error
    job = prediction_job_start(study=study, model_version=model_version, batch_size=16)
    job.refresh_from_db()
    assert (job.state, job.done, job.failed) == (PredictionJob.State.DONE, job.total, 0)
    return model_version


def test_fine_tuning_on_exported_human_distributions_brings_the_model_closer_to_the_humans(tmp_path):
    call_command("seed_demo", "--count", "40", "--gold-fraction", "0", stdout=io.StringIO(), stderr=io.StringIO())
    study = Study.objects.get(slug="demo")
    soft_labels = tmp_path / "soft_labels.csv"
    soft_labels.write_bytes(b"".join(exports.stream(study, "soft_labels.csv")))

    # The starting model: trained on hard labels of other synthetic faces (as a registered model would be).
    _train(["--dataset", "synthetic", "--synthetic-n", "48", "--synthetic-test-n", "16", "--synthetic-seed", "7",
            "--method", "ce", "--arch", "resnet18_small", "--image-size", "32", "--epochs", "4",
            "--out", str(tmp_path / "start")])
    final = _train(["--soft-labels", str(soft_labels), "--soft-labels-root", str(settings.MEDIA_ROOT),
                    "--init", str(tmp_path / "start" / "last.pt"), "--method", "ce", "--epochs", "15",
                    "--lr-steps", "--out", str(tmp_path / "tuned")])
    assert final["train_images"] == 40

    start = _register_and_predict(tmp_path / "start" / "last.pt", "hard labels", study)
    tuned = _register_and_predict(tmp_path / "tuned" / "last.pt", "fine-tuned on humans", study)
    data = comparison_data(study=study)
    assert (data.n_votes == 10).all()
    rows = {row["name"]: row for row in model_summaries(data) if row.get("model_id")}
    before, after = rows[start.name]["mean_js"], rows[tuned.name]["mean_js"]
    print(f"mean JS to the humans: start {before:.4f}, fine-tuned {after:.4f}")
    assert after < before - 0.05, (before, after)
    assert rows[tuned.name]["mean_kl"] < rows[start.name]["mean_kl"]

    # ml.evaluate on the same file scores what the comparison view scores (same images, same definitions).
    from ml.evaluate import evaluate_checkpoint, get_args_parser

    results = evaluate_checkpoint(get_args_parser().parse_args(
        ["--checkpoint", str(tmp_path / "tuned" / "last.pt"), "--soft-labels", str(soft_labels),
         "--soft-labels-root", str(settings.MEDIA_ROOT), "--workers", "0", "--device", "cpu"]))
    assert results["n_distributions"] == 40
    assert results["mean_js"] == pytest.approx(after, abs=0.01)
    assert np.isfinite(results["mean_kl"])
