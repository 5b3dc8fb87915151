"""python manage.py export_study <slug> --out DIR [--zip]"""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from study import exports
from study.models import Study


class Command(BaseCommand):
    help = "Write a study's votes, stimuli, participants, predictions, summary, soft-label distributions and codebook."

    def add_arguments(self, parser):
        parser.add_argument("slug", help="study slug")
        parser.add_argument("--out", type=Path, required=True, help="folder to write the files into")
        parser.add_argument("--zip", action="store_true", help="also write <slug>.zip with every file")
        parser.add_argument("--include-test", action="store_true",
                            help="keep test participants (researchers' previews), flagged participant_is_test")

    def handle(self, *args, **opts):
        study = Study.objects.select_related("label_set").filter(slug=opts["slug"]).first()
        if study is None:
            raise CommandError(f"no study with slug {opts['slug']!r}")
        out: Path = opts["out"]
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CommandError(f"cannot create {out}: {exc}") from None
        try:
            for name in exports.EXPORT_FILES:
                self._write(out / name, exports.stream(study, name, opts["include_test"]))
            if opts["zip"]:
                self._write(out / f"{study.slug}.zip", exports.zip_stream(study, opts["include_test"]))
        except OSError as exc:
            raise CommandError(f"cannot write the export: {exc}") from None

    def _write(self, path: Path, chunks) -> None:
        with open(path, "wb") as handle:
            for chunk in chunks:
                handle.write(chunk)
        self.stdout.write(f"wrote {path}")
