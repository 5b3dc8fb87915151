"""python manage.py import_votes <slug> FILE [--source "FER+ taggers"]"""
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from study.errors import DomainError
from study.models import Study
from study.services.vote_imports import votes_import


class Command(BaseCommand):
    help = (
        "Import existing human annotations into a study as a named source (shown beside, merged with or "
        "compared against the live votes). FILE is a CSV in long format (filename, annotator, label[, "
        "response_ms]) or count format (filename plus one column per label, as FER+ and CIFAR-10H publish). "
        "Labels are matched by name with the usual aliases; unknown images and labels are reported. "
        "Importing the same file again changes nothing."
    )

    def add_arguments(self, parser):
        parser.add_argument("slug", help="the study's slug")
        parser.add_argument("file", type=Path, help="a CSV file")
        parser.add_argument("--source", default="", help="the source's name (default: the file name without extension)")

    def handle(self, *args, **opts):
        study = Study.objects.select_related("label_set").filter(slug=opts["slug"]).first()
        if study is None:
            known = ", ".join(Study.objects.order_by("slug").values_list("slug", flat=True)[:20]) or "none yet"
            raise CommandError(f"No study with the slug {opts['slug']!r} (existing: {known}).")
        path: Path = opts["file"]
        try:
            data = path.read_bytes()
        except OSError as error:
            raise CommandError(f"{path}: {error.strerror or error}.") from None
        try:
            report = votes_import(study=study, source_name=opts["source"] or path.stem, data=data)
        except DomainError as error:
            raise CommandError(error.message) from None
        lines = report.lines()
        self.stdout.write(self.style.SUCCESS(lines[0]))
        for line in lines[1:]:
            self.stdout.write(self.style.WARNING(line))
