"""python manage.py register_model <file> --name NAME --owner USERNAME [--public] [--demo] [--notes ...]
[--lambda-export CSV] [--figure4 PNG] [--figure4-gallery ZIP] [--sidecar JSON]

<file> is an EmoStudy checkpoint, or a TorchScript/ONNX file with a sidecar JSON (ml/foreign.py)."""
import json
import time
from contextlib import ExitStack
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from study.errors import DomainError
from study.models import ModelVersion
from study.services.models import (
    checkpoint_precheck,
    model_version_register,
    model_version_remove,
    model_version_revalidate,
)


class Command(BaseCommand):
    help = ("Register a trained checkpoint as a model version. A worker validates it by loading it; "
            "the command waits for the verdict unless --no-wait.")

    def add_arguments(self, parser):
        parser.add_argument("checkpoint", type=Path, help="checkpoint file written by `python -m ml.train`")
        parser.add_argument("--name", required=True, help="model name shown to researchers (unique per owner)")
        parser.add_argument("--owner", required=True,
                            help="username of the researcher who owns the model (only they may delete or share it)")
        parser.add_argument("--public", action="store_true", help="every researcher may see and run the model")
        parser.add_argument("--demo", action="store_true", help="mark as the demo model")
        parser.add_argument("--notes", default="", help="free text shown beside the model")
        parser.add_argument("--lambda-export", type=Path, default=None,
                            help="the training run's lambdas.csv, for the comparison view's uncertainty tab")
        parser.add_argument("--figure4", type=Path, default=None,
                            help="the run's Figure 4 PNG (python -m ml.uncertainty --run RUN --out figure4.png)")
        parser.add_argument("--figure4-gallery", type=Path, default=None,
                            help="the run's Figure 4 thumbnails as a zip (python -m ml.uncertainty ... --gallery "
                                 "figure4_gallery.zip): shown as a captioned gallery in the uncertainty tab")
        parser.add_argument("--no-wait", action="store_true", help="return at once; validation happens later")
        parser.add_argument("--timeout", type=float, default=300, help="seconds to wait for validation")
        parser.add_argument("--sidecar", type=Path, default=None,
                            help="JSON describing a TorchScript or ONNX file (default: <checkpoint>.json if it "
                                 "exists); see ml/README.md, 'Bring your own model'")
        parser.add_argument("--if-missing", action="store_true",
                            help="do nothing (exit 0) when a model with this name or file already exists")

    def handle(self, *args, **opts):
        path: Path = opts["checkpoint"]
        if not path.is_file():
            raise CommandError(f"{path}: no such file")
        for option in ("lambda_export", "figure4", "figure4_gallery"):
            if opts[option] and not opts[option].is_file():
                raise CommandError(f"{opts[option]}: no such file")
        sidecar_file = opts["sidecar"] or path.with_name(path.name + ".json")
        sidecar = None
        if opts["sidecar"] or sidecar_file.is_file():
            try:
                sidecar = json.loads(sidecar_file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise CommandError(f"{sidecar_file}: not readable JSON ({exc})") from None
        if sidecar is None:
            with open(path, "rb") as handle:  # fail fast, before touching the database
                try:
                    checkpoint_precheck(handle=handle, filename=path.name)
                except DomainError as error:
                    raise CommandError(error.message) from None
        User = get_user_model()
        owner = User.objects.filter(**{User.USERNAME_FIELD: opts["owner"]}).first()
        if owner is None:
            raise CommandError(f"no user named {opts['owner']!r}; create the account first (manage.py createsuperuser)")
        existing = (ModelVersion.objects.filter(name=opts["name"], owner=owner)
                    .exclude(status=ModelVersion.Status.INVALID).first())
        if opts["if_missing"] and existing:
            if existing.status == ModelVersion.Status.VALID:
                self.stdout.write(f"model {opts['name']!r} is already registered")
                return
            self.stdout.write(f"model {opts['name']!r} is still pending validation; queueing it again")
            model_version_revalidate(model_version=existing)
            self._wait(existing, opts)
            return
        try:
            with ExitStack() as files:
                extra = {option: files.enter_context(open(opts[option], "rb")) if opts[option] else None
                         for option in ("lambda_export", "figure4", "figure4_gallery")}
                handle = files.enter_context(open(path, "rb"))
                model_version = model_version_register(name=opts["name"], handle=handle, filename=path.name,
                                                       notes=opts["notes"], is_demo=opts["demo"], owner=owner,
                                                       is_public=opts["public"], sidecar=sidecar,
                                                       lambda_export=extra["lambda_export"],
                                                       figure4_image=extra["figure4"],
                                                       figure4_gallery=extra["figure4_gallery"])
        except DomainError as error:
            if opts["if_missing"] and "already registered" in error.message:
                self.stdout.write(error.message)
                return
            raise CommandError(error.message) from None
        self.stdout.write(f"stored {path.name} as {model_version.name!r} (sha256 {model_version.sha256[:12]}…)")
        if opts["no_wait"]:
            self.stdout.write("validation is queued; see the model list for the verdict")
            return
        self._wait(model_version, opts)

    def _wait(self, model_version: ModelVersion, opts) -> None:
        deadline = time.monotonic() + opts["timeout"]
        while time.monotonic() < deadline:
            model_version.refresh_from_db()
            if model_version.status == ModelVersion.Status.VALID:
                self.stdout.write(self.style.SUCCESS(
                    f"valid: {model_version.arch}, {len(model_version.classes)} classes "
                    f"({', '.join(model_version.classes)}), input {model_version.input_size}px"))
                return
            if model_version.status == ModelVersion.Status.INVALID:
                reason = model_version.validation_error
                model_version_remove(model_version=model_version)  # a rejected file leaves nothing behind
                raise CommandError(f"rejected: {reason}")
            time.sleep(0.3)
        raise CommandError(f"no worker validated the model within {opts['timeout']:.0f}s; is a worker running "
                           "(`celery -A webapp worker -Q gpu`)? The model stays pending until one does.")
