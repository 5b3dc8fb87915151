"""python manage.py import_stimuli <slug> <folder-or-zip> [--manifest labels.csv] [--source NAME] [--keep-faceless]

For a study that detects and crops faces on import, the detection runs in this process (it is not the web
process, so it may load torch), with the same progress bar and a line per face.
"""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError
from tqdm import tqdm

from study.errors import DomainError
from study.models import Study
from study.services.stimuli import IMPORTED, NO_FACE, REJECTED, stimuli_import_archive


class Command(BaseCommand):
    help = (
        "Import the JPEG/PNG/WebP images under a folder (recursively) or inside a .zip into a study. "
        "An optional CSV manifest (filename,label,valence,arousal,is_gold) gives ground truth, VA and gold "
        "flags; without --manifest, a manifest.csv at the top of the folder or zip is used if present. "
        "Duplicates (same bytes already in the study) are skipped; bad files are reported and skipped. "
        "If the study detects and crops faces on import, each face found in a photo becomes one image."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the study's slug")
        parser.add_argument("path", type=Path, help="a folder of images or a .zip file")
        parser.add_argument("--manifest", type=Path, default=None, help="CSV: filename,label,valence,arousal,is_gold")
        parser.add_argument("--source", default="",
                            help="source name stored with each image (default: the folder or zip name)")
        parser.add_argument("--no-progress", action="store_true", help="no progress bar (e.g. in logs)")
        parser.add_argument("--keep-faceless", action="store_true",
                            help="studies that crop faces: import photos with no face whole (default: report them)")

    def handle(self, *args, **opts):
        study = Study.objects.select_related("label_set").filter(slug=opts["slug"]).first()
        if study is None:
            known = ", ".join(Study.objects.order_by("slug").values_list("slug", flat=True)[:20]) or "none yet"
            raise CommandError(f"No study with the slug {opts['slug']!r} (existing: {known}).")
        path: Path = opts["path"]
        if not path.exists():
            raise CommandError(f"{path}: no such file or folder.")
        if opts["manifest"] is not None and not opts["manifest"].is_file():
            raise CommandError(f"{opts['manifest']}: no such manifest file.")
        bar = None

        def progress(result, done, total):
            nonlocal bar
            if bar is None:
                stream = getattr(self.stderr, "_out", self.stderr)  # the raw stream: tqdm redraws with \r
                bar = tqdm(total=total, unit="img", desc=f"importing into {study.slug}", file=stream,
                           disable=opts["no_progress"] or opts["verbosity"] == 0)
            bar.update(done - bar.n)  # a photo cut into several faces reports once per face

        try:
            importer = None
            if study.face_crop != Study.FaceCrop.OFF:
                from study.services.face_imports import face_importer
                from study.tasks import face_cropper  # loads torch: this command, never the web process

                importer = face_importer(cropper=face_cropper(study.face_crop), keep_faceless=opts["keep_faceless"])
            elif opts["keep_faceless"]:
                raise CommandError(f"--keep-faceless: the study {study.slug!r} does not crop faces on import.")
            report = stimuli_import_archive(study=study, path=path, manifest=opts["manifest"],
                                            source=opts["source"], progress=progress, importer=importer)
        except DomainError as error:
            raise CommandError(error.message) from None
        finally:
            if bar is not None:
                bar.close()
        for result in report.results:
            if result.status == REJECTED:
                self.stdout.write(self.style.ERROR(f"rejected   {result.name}: {result.reason}"))
            elif result.status == NO_FACE:
                self.stdout.write(self.style.WARNING(f"no face    {result.name}: {result.reason}"))
            elif opts["verbosity"] >= 1:
                line = f"{result.status:<10} {result.name}" + (f": {result.reason}" if result.reason else "")
                self.stdout.write(self.style.SUCCESS(line) if result.status == IMPORTED else line)
        counts = report.counts()
        style = self.style.SUCCESS if counts[REJECTED] == 0 else self.style.WARNING
        self.stdout.write(style(f"{study.slug}: {report.summary()}; the study now has "
                                f"{study.stimuli.count()} images."))
        self.stdout.write(report.manifest_summary())
