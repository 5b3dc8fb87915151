"""`manage.py seed_demo`: a live demo study of synthetic faces and one admin, and nothing new on a second run."""
import io

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from study.models import Stimulus, Study

pytestmark = pytest.mark.django_db


def seed(*args, **kwargs) -> str:
    out = io.StringIO()
    call_command("seed_demo", *args, stdout=out, stderr=io.StringIO(), **kwargs)
    return out.getvalue()


def test_seed_demo_creates_a_live_study_of_labelled_synthetic_faces(monkeypatch):
    monkeypatch.delenv("EMOSTUDY_ADMIN_PASSWORD", raising=False)
    out = seed("--count", "20")
    study = Study.objects.get(slug="demo")
    assert study.status == Study.Status.LIVE
    assert (study.votes_per_image, study.images_per_participant) == (10, 20)
    assert study.consent_text and study.instructions_text
    assert "click" not in study.instructions_text and "key" not in study.instructions_text  # right on phones too
    assert study.owner.username == "admin" and study.owner.is_superuser
    stimuli = Stimulus.objects.filter(study=study)
    assert stimuli.count() == 20
    labels = set(study.label_set.labels)
    assert all(s.ground_truth in labels for s in stimuli)
    assert all(-1 <= s.valence <= 1 and -1 <= s.arousal <= 1 for s in stimuli)
    assert stimuli.filter(is_gold=True).count() == 2  # 10 %
    assert all((s.width, s.height) == (112, 112) for s in stimuli)
    assert "http://127.0.0.1:8000/s/demo/" in out
    links = [line.split()[-1] for line in out.splitlines() if "http://" in line]
    assert "http://127.0.0.1:8000/studies/" in links  # the researcher dashboard
    assert "http://127.0.0.1:8000/studies/demo/" in out
    assert "http://127.0.0.1:8000/admin/" in out


def test_gold_items_are_the_least_ambiguous_faces():
    from ml.data.synthetic import generate_faces

    seed("--count", "20", "--seed", "4")
    faces = generate_faces(20, seed=4)
    purity = sorted(((face.mixture.max(), i) for i, face in enumerate(faces)), reverse=True)
    expected = {f"synthetic_{i:04d}.png" for _, i in purity[:2]}
    assert set(Stimulus.objects.filter(is_gold=True).values_list("original_name", flat=True)) == expected


def test_running_twice_changes_nothing_and_prints_the_password_once(monkeypatch):
    monkeypatch.delenv("EMOSTUDY_ADMIN_PASSWORD", raising=False)
    first = seed("--count", "12")
    rows = sorted(Stimulus.objects.values_list("pk", "sha256", "image"))
    second = seed("--count", "12")
    assert Study.objects.count() == 1
    assert Stimulus.objects.count() == 12
    assert sorted(Stimulus.objects.values_list("pk", "sha256", "image")) == rows
    assert get_user_model().objects.filter(username="admin").count() == 1
    assert "with password:" in first
    password = first.split("with password:")[1].split()[0]
    assert get_user_model().objects.get(username="admin").check_password(password)
    assert f"log in as            admin / {password}" in first.split("Open:")[1]  # repeated below the links
    assert password not in second and "with password:" not in second
    assert "Admin user 'admin' exists" in second and "manage.py changepassword admin" in second


def test_admin_password_comes_from_the_environment(monkeypatch):
    monkeypatch.setenv("EMOSTUDY_ADMIN_PASSWORD", "correct-horse-battery")
    out = seed("--count", "3")
    assert "correct-horse-battery" not in out and "EMOSTUDY_ADMIN_PASSWORD" in out
    assert get_user_model().objects.get(username="admin").check_password("correct-horse-battery")


def test_a_researcher_paused_demo_stays_paused(monkeypatch):
    seed("--count", "3")
    Study.objects.filter(slug="demo").update(status=Study.Status.PAUSED, title="Edited")
    seed("--count", "3")
    study = Study.objects.get(slug="demo")
    assert (study.status, study.title) == (Study.Status.PAUSED, "Edited")


def test_an_interrupted_seed_is_completed_by_the_next_run():
    seed("--count", "6")
    Stimulus.objects.filter(original_name__in=["synthetic_0004.png", "synthetic_0005.png"]).delete()
    seed("--count", "6")
    assert Stimulus.objects.count() == 6
