"""Prediction pipeline throughput: job start -> every prediction stored, against a raw batched forward.

    python bench/predict.py [--n 300] [--batch-size 32] [--checkpoint var/models/demo.pt]

Both are measured in this run on the same model and the same images, and reported as a ratio (machines
are noisy; absolute images/s mean little). The end-to-end side runs the job the way a warm worker does
(prediction_job_run with the per-process predictor cache): reading image files from MEDIA_ROOT, decoding,
predicting, mapping labels, upserting rows and updating progress per batch, on a throwaway SQLite
database (or DATABASE_URL if set). Not a pass/fail test.
"""
import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench._django import setup_django  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=300, help="images in the study")
    parser.add_argument("--batch-size", type=int, default=32, help="images per forward pass")
    parser.add_argument("--checkpoint", default=str(ROOT / "var/models/demo.pt"),
                        help="model to use (default: the demo model; a tiny untrained one if missing)")
    parser.add_argument("--untrained-arch", default=None,
                        help="instead of --checkpoint, an untrained model of this arch (e.g. resnet18)")
    parser.add_argument("--input-size", type=int, default=112, help="input size of the --untrained-arch model")
    parser.add_argument("--repeats", type=int, default=3, help="timed repetitions of each side (best is kept)")
    args = parser.parse_args()

    workdir = setup_django()
    import io

    import django
    import torch
    from django.core.files.base import ContentFile

    from ml.data.synthetic import generate_faces
    from ml.predictor import get_predictor
    from study.models import LabelSet, ModelVersion, Prediction, PredictionJob, Stimulus, Study
    from study.services.predictions import prediction_job_run

    checkpoint = Path(args.checkpoint)
    if args.untrained_arch or not checkpoint.is_file():
        from tests.checkpoints import write_tiny_checkpoint

        checkpoint = write_tiny_checkpoint(workdir / "untrained.pt", arch=args.untrained_arch or "resnet18_small",
                                           input_size=args.input_size)
    faces = generate_faces(args.n, seed=123, size=112)
    study = Study.objects.create(slug=f"bench-{time.time_ns()}", title="bench",
                                 label_set=LabelSet.objects.get(name="RAF-DB basic-7"))
    for i, face in enumerate(faces):
        buffer = io.BytesIO()
        face.image.save(buffer, format="PNG")
        Stimulus.objects.create(study=study, sha256=f"{i:064x}", original_name=f"face_{i}.png",
                                image=ContentFile(buffer.getvalue(), name=f"face_{i}.png"))
    predictor = get_predictor(checkpoint, device=None)
    model_version = ModelVersion.objects.create(name=f"bench-{time.time_ns()}", sha256=f"{time.time_ns():064x}",
                                                classes=predictor.classes, status="valid")
    model_version.checkpoint.save("bench.pt", ContentFile(checkpoint.read_bytes()), save=True)
    images = [face.image for face in faces]
    predictor.predict(images[: args.batch_size], batch_size=args.batch_size)  # warm-up

    raw, e2e = [], []
    for _ in range(args.repeats):
        started = time.perf_counter()
        predictor.predict(images, batch_size=args.batch_size)
        raw.append(time.perf_counter() - started)

        Prediction.objects.filter(model_version=model_version).delete()
        job = PredictionJob.objects.create(study=study, model_version=model_version, batch_size=args.batch_size,
                                           total=args.n)
        started = time.perf_counter()
        job = prediction_job_run(job_id=job.pk, predictor_factory=lambda path: get_predictor(path))
        e2e.append(time.perf_counter() - started)
        assert job.state == "done" and job.done == args.n, (job.state, job.done, job.errors[:2])

    raw_rate, e2e_rate = args.n / min(raw), args.n / min(e2e)
    print(f"model {predictor.arch} @ {predictor.input_size}px, {args.n} images of 112px, batch {args.batch_size}, "
          f"device {predictor.device}, torch threads {torch.get_num_threads()}, db {django.db.connection.vendor}")
    print(f"raw batched forward  : {raw_rate:8.1f} images/s (best of {args.repeats})")
    print(f"job end to end       : {e2e_rate:8.1f} images/s (best of {args.repeats})")
    print(f"ratio end-to-end/raw : {e2e_rate / raw_rate:8.2f}  (goal >= 0.8)")


if __name__ == "__main__":
    main()
