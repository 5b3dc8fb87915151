"""Helper of bench/load.py, run with the server's environment: create the study, or check the database after.

    python bench/_load_setup.py SLUG N_IMAGES N_PARTICIPANTS      # a live study sized for the run
    python bench/_load_setup.py --check SLUG < acknowledged.json   # lost / duplicated / balance
"""
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
import django

django.setup()

from django.db.models import Count  # noqa: E402

from study.models import LabelSet, Study, Vote  # noqa: E402
from study.selectors.participants import stimuli_with_load  # noqa: E402
from study.services.stimuli import stimulus_import_file  # noqa: E402


def create(slug: str, n_images: int, n_participants: int) -> None:
    import io

    from PIL import Image

    label_set = LabelSet.objects.get(name="RAF-DB basic-7")
    per_participant = 20
    wanted = max(3, (max(n_participants, 1) * per_participant) // n_images + 2)  # never full during the run
    study = Study.objects.create(slug=slug, title=f"Load test {slug}", label_set=label_set, status="live",
                                 votes_per_image=wanted, images_per_participant=per_participant, gold_rate=0)
    for i in range(n_images):
        buffer = io.BytesIO()
        Image.new("RGB", (8, 8), (i % 256, (i // 256) % 256, 7)).save(buffer, format="PNG")
        stimulus_import_file(study=study, name=f"img_{i}.png", data=buffer.getvalue(), source="load test")
    print(f"study {slug}: {n_images} images, {per_participant} per participant, {wanted} votes wanted per image")


def check(slug: str) -> None:
    acknowledged = {tuple(pair) for pair in json.load(sys.stdin)}
    study = Study.objects.get(slug=slug)
    stored = set(Vote.objects.filter(stimulus__study=study).values_list("participant__public_id", "stimulus__public_id"))
    stored = {(str(p), str(s)) for p, s in stored}
    lost = acknowledged - stored
    duplicated = (Vote.objects.filter(stimulus__study=study).values("participant", "stimulus")
                  .annotate(n=Count("pk")).filter(n__gt=1).count())
    loads = list(stimuli_with_load(study=study).values_list("load", flat=True))
    print(f"database check: {len(acknowledged)} acknowledged votes, {len(stored)} stored, lost {len(lost)}, "
          f"duplicated {duplicated}, load per image (votes + held places) min {min(loads)} max {max(loads)} "
          f"-> {'balanced' if max(loads) - min(loads) <= 1 else 'UNBALANCED'}")


if __name__ == "__main__":
    if sys.argv[1] == "--check":
        check(sys.argv[2])
    else:
        create(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
