"""python manage.py seed_demo: a live demo study of synthetic faces, their simulated annotator panel's votes
(flagged as simulated participants) and an admin user. Idempotent."""
import io
import os
import secrets

import numpy as np
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.urls import reverse

from ml.labels import RAFDB_BASIC7  # pure python, no torch
from study.models import LabelSet, Study
from study.services.stimuli import IMPORTED, REJECTED, stimulus_import_file
from study.services.studies import study_create, study_set_status

DEMO_SLUG = "demo"
ADMIN_USERNAME = "admin"
PASSWORD_ENV = "EMOSTUDY_ADMIN_PASSWORD"

DEMO_CONSENT = (
    "This is a demonstration of EmoStudy. The faces are synthetic: drawn by a program, not photographs of "
    "real people. You will see up to 20 faces and pick, for each, the emotion it shows most clearly; it takes "
    "about 3 minutes. Only your answers and response times are stored, with no name, e-mail or IP address. "
    "You may stop at any time by closing the page."
)
DEMO_INSTRUCTIONS = (
    # device-neutral: the page itself adds "Tap the button…" on a phone or the keys on a keyboard
    "For each face, choose the emotion it expresses most clearly. "
    "Go with your first impression. A few faces are easy attention checks."
)


class Command(BaseCommand):
    help = ("Create (once) a live demo study 'demo' of synthetic faces with ground truth, valence/arousal and "
            "about 10% gold items, and a superuser 'admin' (password from $EMOSTUDY_ADMIN_PASSWORD, else "
            "generated and printed once). Running it again changes nothing.")

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=200, help="number of synthetic faces (default 200)")
        parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic faces")
        parser.add_argument("--gold-fraction", type=float, default=0.1,
                            help="share of gold items (the least ambiguous faces)")
        parser.add_argument("--no-simulated-votes", action="store_true",
                            help="do not load the synthetic faces' simulated annotator panel as votes")
        parser.add_argument("--base-url", default="http://127.0.0.1:8000",
                            help="where the site is served, for the printed links")

    def handle(self, *args, **opts):
        if opts["count"] < 1:
            raise CommandError("--count must be at least 1.")
        if not 0.0 <= opts["gold_fraction"] < 1.0:
            raise CommandError("--gold-fraction must be at least 0 and below 1.")
        admin, new_password = self._ensure_admin()
        study = self._ensure_study(owner=admin)
        faces = self._ensure_faces(study, count=opts["count"], seed=opts["seed"], gold_fraction=opts["gold_fraction"])
        if not opts["no_simulated_votes"]:
            self._ensure_panel(study, faces=faces, count=opts["count"], seed=opts["seed"])
        if study.status == Study.Status.DRAFT:  # only a study this command just made (or an interrupted run)
            study = study_set_status(study=study, status=Study.Status.LIVE)
        images = study.stimuli.count()
        gold = study.stimuli.filter(is_gold=True).count()
        self.stdout.write(f"Demo study “{study.title}” is {study.get_status_display().lower()}: "
                          f"{images} images, {gold} gold.")
        base = opts["base_url"].rstrip("/")
        self.stdout.write("Open:")
        self.stdout.write(f"  home page            {base}{reverse('study:landing')}")
        self.stdout.write(f"  participant link     {base}{reverse('study:participant-entry', args=[study.slug])}")
        self.stdout.write(f"  researcher dashboard {base}{reverse('study:researcher-study-list')}")
        self.stdout.write(f"  demo study page      {base}{reverse('study:researcher-study-detail', args=[study.slug])}")
        self.stdout.write(f"  admin                {base}{reverse('admin:index')}")
        if new_password:  # repeated here, where the eye lands after the start-up lines
            self.stdout.write(self.style.SUCCESS(
                f"  log in as            {ADMIN_USERNAME} / {new_password}  (shown only this once)"))

    def _ensure_admin(self) -> tuple:
        """(the admin user, the password generated for it now, or "" when none was shown)."""
        User = get_user_model()
        user = User.objects.filter(username=ADMIN_USERNAME).first()
        if user is not None:
            self.stdout.write(f"Admin user '{ADMIN_USERNAME}' exists (password unchanged; to set a new one: "
                              f"python manage.py changepassword {ADMIN_USERNAME}).")
            return user, ""
        password = os.environ.get(PASSWORD_ENV, "")
        user = User.objects.create_superuser(ADMIN_USERNAME, "admin@example.com", password or None)
        if password:
            self.stdout.write(f"Created admin user '{ADMIN_USERNAME}' with the password in ${PASSWORD_ENV}.")
            return user, ""
        password = secrets.token_urlsafe(12)
        user.set_password(password)
        user.save(update_fields=["password"])
        self.stdout.write(self.style.SUCCESS(
            f"Created admin user '{ADMIN_USERNAME}' with password: {password}  (shown only this once)"))
        return user, password

    @transaction.atomic
    def _ensure_study(self, *, owner) -> Study:
        study = Study.objects.filter(slug=DEMO_SLUG).first()
        if study is not None:
            if not study.readable_by_all_researchers:  # a demo made before the flag existed
                study.readable_by_all_researchers = True
                study.save(update_fields=["readable_by_all_researchers"])
            return study
        label_set, _ = LabelSet.objects.get_or_create(name="RAF-DB basic-7", defaults={"labels": RAFDB_BASIC7})
        study = study_create(
            owner=owner, title="Demo: emotions in synthetic faces", slug=DEMO_SLUG, label_set=label_set,
            votes_per_image=10, images_per_participant=20, gold_rate=0.1, gold_pass_threshold=0.75,
            consent_text=DEMO_CONSENT, instructions_text=DEMO_INSTRUCTIONS, random_seed=0,
        )
        study.readable_by_all_researchers = True  # every researcher may read the demo's comparison view
        study.save(update_fields=["readable_by_all_researchers"])
        self.stdout.write(f"Created study '{DEMO_SLUG}'.")
        return study

    def _ensure_faces(self, study: Study, *, count: int, seed: int, gold_fraction: float) -> list | None:
        """Import the synthetic faces unless they are there; returns the faces generated (None if none were)."""
        if study.stimuli.count() >= count:
            return None
        from ml.data.synthetic import generate_faces  # numpy + Pillow only; imported here to keep startup light

        labels = list(study.label_set.labels)
        faces = generate_faces(count, seed=seed, classes=labels)
        purity = np.array([face.mixture.max() for face in faces])
        n_gold = round(gold_fraction * count) if gold_fraction > 0 else 0
        gold = set(np.argsort(-purity, kind="stable")[:n_gold].tolist())
        counts = {IMPORTED: 0, REJECTED: 0}
        for i, face in enumerate(faces):
            buffer = io.BytesIO()
            face.image.save(buffer, format="PNG")
            result = stimulus_import_file(
                study=study, name=f"synthetic_{i:04d}.png", data=buffer.getvalue(), ground_truth=face.label,
                valence=face.valence, arousal=face.arousal, is_gold=i in gold, source=f"synthetic seed={seed}",
            )
            counts[result.status] = counts.get(result.status, 0) + 1
            if result.status == REJECTED:
                self.stderr.write(f"synthetic_{i:04d}.png rejected: {result.reason}")
        self.stdout.write(f"Imported {counts[IMPORTED]} synthetic faces ({len(gold)} gold).")
        return faces

    def _ensure_panel(self, study: Study, *, faces: list | None, count: int, seed: int) -> None:
        """The faces' simulated annotator panel (their `votes_<Class>` counts) as simulated participants."""
        from study.services.simulated import simulated_panel_load

        panel = f"synthetic seed={seed}"
        if study.participants.filter(is_simulated=True, external_ids__simulated_panel=panel).exists():
            return
        if faces is None:  # faces imported by an earlier run: draw them again (same seed, same votes)
            from ml.data.synthetic import generate_faces

            faces = generate_faces(count, seed=seed, classes=list(study.label_set.labels))
        by_name = dict(study.stimuli.values_list("original_name", "pk"))
        counts = {by_name[f"synthetic_{i:04d}.png"]: face.votes.tolist() for i, face in enumerate(faces)
                  if f"synthetic_{i:04d}.png" in by_name}
        stored = simulated_panel_load(study=study, counts=counts, panel=panel, seed=seed)
        members = study.participants.filter(is_simulated=True, external_ids__simulated_panel=panel).count()
        self.stdout.write(f"Loaded the simulated annotator panel: {stored} votes from {members} simulated "
                          "participants (flagged; the study page can leave them out).")
