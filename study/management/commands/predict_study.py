"""python manage.py predict_study <slug> --model NAME [--force] [--batch-size N] [--wait]"""
import time

from django.core.management.base import BaseCommand, CommandError

from study.errors import DomainError
from study.models import PredictionJob, Study
from study.services.models import model_version_get
from study.services.predictions import prediction_job_start


class Command(BaseCommand):
    help = "Queue a prediction job: the model predicts an emotion distribution for every image of the study."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="study slug")
        parser.add_argument("--model", required=True, help="registered model name")
        parser.add_argument("--owner", default=None, help="the model owner's username, when several owners use the name")
        parser.add_argument("--force", action="store_true", help="predict again images that already have one")
        parser.add_argument("--allow-missing-labels", action="store_true",
                            help="run a model lacking some study labels (they get probability 0)")
        parser.add_argument("--batch-size", type=int, default=None, help="images per forward pass")
        parser.add_argument("--wait", action="store_true", help="wait for the job to finish, printing progress")
        parser.add_argument("--timeout", type=float, default=3600, help="seconds to wait with --wait")

    def handle(self, *args, **opts):
        study = Study.objects.select_related("label_set").filter(slug=opts["slug"]).first()
        if study is None:
            raise CommandError(f"no study with slug {opts['slug']!r}")
        try:
            model_version = model_version_get(name=opts["model"], owner=opts["owner"])
            job = prediction_job_start(study=study, model_version=model_version, force=opts["force"],
                                       allow_missing_labels=opts["allow_missing_labels"], batch_size=opts["batch_size"])
        except DomainError as error:
            raise CommandError(error.message) from None
        self.stdout.write(f"job {job.pk} queued: {model_version.name} on {study.slug} ({job.total} images)")
        if not opts["wait"]:
            return
        deadline, last = time.monotonic() + opts["timeout"], None
        while time.monotonic() < deadline:
            job.refresh_from_db()
            if (job.state, job.done) != last:
                self.stdout.write(f"  {job.state}: {job.done}/{job.total} done, {job.failed} failed")
                last = (job.state, job.done)
            if job.state in (PredictionJob.State.DONE, PredictionJob.State.CANCELLED):
                return
            if job.state == PredictionJob.State.FAILED:
                raise CommandError(f"job failed: {job.errors[:1]}")
            time.sleep(0.5)
        raise CommandError("timed out waiting; the job goes on in the worker")
