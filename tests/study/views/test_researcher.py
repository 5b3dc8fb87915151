"""Researcher pages: ownership (404 for others), creation, status transitions, uploads (happy path, bad files, limits)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from study.errors import InvalidInput, InvalidStatusChange
from study.models import LabelSet, Stimulus, Study
from study.services.studies import study_set_status
from tests.factories import ParticipantFactory, StimulusFactory, StudyFactory, UserFactory, VoteFactory, png_bytes
from tests.files import make_zip

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner():
    return UserFactory(username="owner")


@pytest.fixture
def study(owner):
    return StudyFactory(owner=owner, slug="mine", title="My study", status="draft", votes_per_image=3)


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def url(name: str, *args) -> str:
    return reverse(f"study:researcher-{name}", args=args)


def upload(name: str, data: bytes, content_type: str = "image/png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, data, content_type=content_type)


# --- access ----------------------------------------------------------------------------------------


def test_anonymous_users_are_sent_to_log_in(client, study):
    for target in (url("study-list"), url("study-create"), url("study-detail", "mine")):
        response = client.get(target)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_list_shows_only_own_studies_with_progress(owner_client, study, owner):
    StudyFactory(slug="theirs", title="Their study")
    StimulusFactory.create_batch(2, study=study)
    response = owner_client.get(url("study-list"))
    html = response.content.decode()
    assert response.status_code == 200
    assert "My study" in html and "Their study" not in html
    row = response.context["studies"].get(pk=study.pk)
    assert (row.n_images, row.n_gold, row.n_participants, row.n_votes) == (2, 0, 0, 0)


def test_superuser_sees_every_study(client, study):
    StudyFactory(slug="theirs", title="Their study")
    client.force_login(UserFactory(username="root", is_superuser=True))
    html = client.get(url("study-list")).content.decode()
    assert "My study" in html and "Their study" in html
    assert client.get(url("study-detail", "theirs")).status_code == 200


@pytest.mark.parametrize("name,method", [
    ("study-detail", "get"), ("study-images", "get"), ("study-status", "post"), ("study-upload", "post"),
])
def test_other_researchers_studies_answer_404(client, study, name, method):
    client.force_login(UserFactory(username="intruder"))
    response = getattr(client, method)(url(name, study.slug), {"status": "live"} if method == "post" else None)
    assert response.status_code == 404
    assert Study.objects.get(pk=study.pk).status == "draft"


def test_other_researchers_images_answer_404(client, study):
    stimulus = StimulusFactory(study=study)
    client.force_login(UserFactory(username="intruder"))
    assert client.get(url("stimulus-image", study.slug, stimulus.public_id)).status_code == 404


# --- create ----------------------------------------------------------------------------------------


def create_data(**overrides) -> dict:
    data = {
        "title": "Faces 2025", "slug": "faces-2025", "label_set": LabelSet.objects.get(name="RAF-DB basic-7").pk,
        "votes_per_image": 8, "images_per_participant": 15, "gold_rate": 0.2, "gold_pass_threshold": 0.5,
        "shuffle_labels": "on", "consent_text": "", "instructions_text": "Pick one.",
        "completion_url": "https://app.prolific.com/submissions/complete", "url_parameters": "cohort, workerId",
    }
    data.update(overrides)
    return data


def test_create_form_makes_a_draft_owned_by_the_researcher(owner_client, owner):
    assert owner_client.get(url("study-create")).status_code == 200
    response = owner_client.post(url("study-create"), create_data())
    assert response.status_code == 302 and response["Location"] == url("study-detail", "faces-2025")
    study = Study.objects.get(slug="faces-2025")
    assert (study.owner, study.status, study.votes_per_image, study.images_per_participant) == (owner, "draft", 8, 15)
    assert (study.gold_rate, study.gold_pass_threshold, study.shuffle_labels) == (0.2, 0.5, True)
    assert study.url_parameters == ["cohort", "workerId"]
    assert study.instructions_text == "Pick one." and "research study" in study.consent_text  # default consent


@pytest.mark.parametrize("overrides,message", [
    ({"slug": "new"}, "reserved"),
    ({"slug": "mine"}, "already exists"),
    ({"gold_rate": 1.5}, "less than or equal to 0.9"),
    ({"votes_per_image": 0}, "greater than or equal to 1"),
    ({"url_parameters": "ok, bad name!"}, "Not valid URL parameter names"),
    ({"completion_url": "not a url"}, "Enter a valid URL"),
])
def test_create_form_rejects_bad_input_with_a_message(owner_client, study, overrides, message):
    response = owner_client.post(url("study-create"), create_data(**overrides))
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Study.objects.filter(title="Faces 2025").exists()


# --- status ----------------------------------------------------------------------------------------


def post_status(client, slug: str, status: str, reopen: bool = False):
    data = {"status": status, **({"reopen": "on"} if reopen else {})}
    return client.post(url("study-status", slug), data)


def test_launch_without_images_is_refused_with_409(owner_client, study):
    response = post_status(owner_client, "mine", "live")
    assert response.status_code == 409
    assert "Upload at least one image that is not a gold item" in response.content.decode()
    StimulusFactory(study=study, is_gold=True, ground_truth="Fear")
    assert post_status(owner_client, "mine", "live").status_code == 409  # gold alone is not enough
    assert Study.objects.get(pk=study.pk).status == "draft"


def test_launch_pause_resume_close_and_reopen(owner_client, study):
    StimulusFactory(study=study)
    for status in ("live", "paused", "live", "closed"):
        response = post_status(owner_client, "mine", status)
        assert response.status_code == 302, (status, response.status_code)
        assert Study.objects.get(pk=study.pk).status == status
    response = post_status(owner_client, "mine", "live")
    assert response.status_code == 409 and "Reopen it explicitly" in response.content.decode()
    assert post_status(owner_client, "mine", "paused", reopen=True).status_code == 302
    assert Study.objects.get(pk=study.pk).status == "paused"


def test_nothing_goes_back_to_draft_and_unknown_statuses_are_400(owner_client, study):
    StimulusFactory(study=study)
    post_status(owner_client, "mine", "live")
    assert post_status(owner_client, "mine", "draft").status_code == 409
    assert post_status(owner_client, "mine", "archived").status_code == 400
    assert Study.objects.get(pk=study.pk).status == "live"


def test_setting_the_current_status_again_is_harmless(study):
    StimulusFactory(study=study)
    study_set_status(study=study, status="live")
    assert study_set_status(study=study, status="live").status == "live"
    with pytest.raises(InvalidStatusChange):
        study_set_status(study=study, status="draft")
    with pytest.raises(InvalidInput):
        study_set_status(study=study, status="bogus")


def test_status_change_needs_post_and_csrf(study, owner):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(owner)
    StimulusFactory(study=study)
    assert csrf_client.get(url("study-status", "mine")).status_code == 405
    assert csrf_client.post(url("study-status", "mine"), {"status": "live"}).status_code == 403
    assert Study.objects.get(pk=study.pk).status == "draft"


# --- detail ----------------------------------------------------------------------------------------


def test_detail_shows_counts_histogram_link_and_buttons(owner_client, study):
    a, b, gold = StimulusFactory(study=study), StimulusFactory(study=study), StimulusFactory(study=study, is_gold=True)
    people = [ParticipantFactory(study=study) for _ in range(3)]
    people[2].excluded = True
    people[2].save()
    for person in people:
        VoteFactory(participant=person, stimulus=a)
        VoteFactory(participant=person, stimulus=gold)
    VoteFactory(participant=people[0], stimulus=b)
    response = owner_client.get(url("study-detail", "mine"))
    assert response.status_code == 200
    dashboard = response.context["dashboard"]
    assert (dashboard.images, dashboard.gold, dashboard.participants, dashboard.excluded) == (2, 1, 3, 1)
    assert (dashboard.votes, dashboard.votes_all, dashboard.votes_wanted) == (3, 7, 6)
    assert dashboard.images_complete == 0
    assert [(bar.label, bar.images) for bar in dashboard.histogram] == [
        ("0", 0), ("1", 1), ("2", 1), ("3+ (complete)", 0)]
    html = response.content.decode()
    assert "http://testserver/s/mine/" in html
    assert 'value="live"' in html and ">Launch<" in html  # a draft offers Launch
    assert 'name="csrfmiddlewaretoken"' in html
    assert 'enctype="multipart/form-data"' in html


def test_every_listed_detail_panel_is_a_template_rendered_on_the_page(owner_client, study):
    from django.template.loader import get_template

    from study.views.researcher import STUDY_DETAIL_PANELS

    for name in STUDY_DETAIL_PANELS:
        get_template(name)  # raises TemplateDoesNotExist for a panel someone listed but did not write
    response = owner_client.get(url("study-detail", "mine"))
    assert response.context["extra_panels"] == list(dict.fromkeys(STUDY_DETAIL_PANELS))
    assert 'id="comparison"' in response.content.decode()


def test_a_panel_appended_by_another_module_is_included_once_with_the_study(owner_client, study, settings,
                                                                           monkeypatch):
    from study.views import researcher as views_researcher

    engine = dict(settings.TEMPLATES[0], APP_DIRS=False)
    engine["OPTIONS"] = dict(engine.get("OPTIONS", {}), loaders=[
        ("django.template.loaders.locmem.Loader", {"tests/_panel.html": "<p class=probe>panel for {{ study.slug }}</p>"}),
        "django.template.loaders.filesystem.Loader",
        "django.template.loaders.app_directories.Loader",
    ])
    settings.TEMPLATES = [engine]
    monkeypatch.setattr(views_researcher, "STUDY_DETAIL_PANELS", [*views_researcher.STUDY_DETAIL_PANELS])
    views_researcher.STUDY_DETAIL_PANELS.append("tests/_panel.html")
    views_researcher.STUDY_DETAIL_PANELS.append("tests/_panel.html")
    html = owner_client.get(url("study-detail", "mine")).content.decode()
    assert html.count("<p class=probe>panel for mine</p>") == 1


def test_images_page_lists_images_fewest_votes_first_and_serves_them(owner_client, study):
    busy, idle = StimulusFactory(study=study), StimulusFactory(study=study)
    VoteFactory(participant=ParticipantFactory(study=study), stimulus=busy)
    response = owner_client.get(url("study-images", "mine"))
    assert response.status_code == 200
    assert [s.pk for s in response.context["page"]] == [idle.pk, busy.pk]
    image = owner_client.get(url("stimulus-image", "mine", idle.public_id))
    assert image.status_code == 200
    assert b"".join(image.streaming_content) == idle.image.open("rb").read()


# --- upload ----------------------------------------------------------------------------------------


def test_upload_images_and_a_zip_reports_each_file(owner_client, study):
    files = [upload("a.png", png_bytes(1)), upload("set.zip", make_zip({"faces/b.png": png_bytes(2),
                                                                         "faces/c.txt": b"no"}),
                                                   "application/zip")]
    response = owner_client.post(url("study-upload", "mine"), {"files": files})
    assert response.status_code == 302 and response["Location"] == url("study-detail", "mine")
    assert sorted(Stimulus.objects.filter(study=study).values_list("original_name", flat=True)) == ["a.png", "b.png"]
    page = owner_client.get(url("study-detail", "mine")).content.decode()
    assert "Upload result: 2 imported, 0 duplicate, 1 rejected" in page
    assert "faces/c.txt" in page and "not an image" in page
    assert "Upload result" not in owner_client.get(url("study-detail", "mine")).content.decode()  # shown once


def test_upload_with_manifest_sets_labels_and_reports_bad_rows(owner_client, study):
    manifest = upload("labels.csv", b"filename,label,valence,arousal,is_gold\na.png,happy,0.5,0.2,1\n"
                                    b"b.png,Anger,9,0,0\n", "text/csv")
    files = [upload("a.png", png_bytes(1)), upload("b.png", png_bytes(2))]
    response = owner_client.post(url("study-upload", "mine"), {"files": files, "manifest": manifest})
    assert response.status_code == 302
    stimulus = Stimulus.objects.get(study=study)
    assert (stimulus.ground_truth, stimulus.valence, stimulus.is_gold) == ("Happiness", 0.5, True)
    page = owner_client.get(url("study-detail", "mine")).content.decode()
    assert "valence 9 is outside [-1, 1]" in page


def test_upload_of_only_bad_files_is_400_with_the_reasons(owner_client, study):
    files = [upload("broken.png", b"\x89PNG\r\n\x1a\n garbage"), upload("doc.pdf", b"%PDF-1.4", "application/pdf")]
    response = owner_client.post(url("study-upload", "mine"), {"files": files})
    assert response.status_code == 400
    html = response.content.decode()
    assert "Nothing was imported" in html
    assert "broken.png" in html and "doc.pdf" in html and "not an image" in html
    assert not Stimulus.objects.exists()


def test_upload_without_files_is_a_form_error(owner_client, study):
    response = owner_client.post(url("study-upload", "mine"), {})
    assert response.status_code == 400
    assert "This field is required" in response.content.decode()


def test_manifest_that_is_not_csv_or_lacks_filename_is_a_form_error(owner_client, study):
    files = [upload("a.png", png_bytes(1))]
    response = owner_client.post(url("study-upload", "mine"), {"files": files, "manifest": upload("m.txt", b"x")})
    assert response.status_code == 400 and "must be a .csv file" in response.content.decode()
    files = [upload("a.png", png_bytes(1))]
    bad = upload("m.csv", b"name,label\na.png,Fear\n", "text/csv")
    response = owner_client.post(url("study-upload", "mine"), {"files": files, "manifest": bad})
    assert response.status_code == 400 and "no &#x27;filename&#x27; column" in response.content.decode()
    assert not Stimulus.objects.exists()


def test_upload_larger_than_the_limit_is_413_with_a_message(owner_client, study, settings):
    settings.STIMULUS_UPLOAD_MAX_BYTES = 2000
    big = upload("big.png", png_bytes(1) + b"\0" * 5000)
    response = owner_client.post(url("study-upload", "mine"), {"files": [big]})
    assert response.status_code == 413
    assert "The upload is too large" in response.content.decode()
    assert not Stimulus.objects.exists()


def test_too_many_files_in_one_upload_is_400(owner_client, study, settings):
    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [upload(f"{i}.png", png_bytes(i)) for i in range(3)]
    response = owner_client.post(url("study-upload", "mine"), {"files": files})
    assert response.status_code == 400 and "Too many files" in response.content.decode()


def test_upload_needs_a_csrf_token_after_the_size_check(study, owner):
    csrf_client = Client(enforce_csrf_checks=True)
    csrf_client.force_login(owner)
    response = csrf_client.post(url("study-upload", "mine"), {"files": [upload("a.png", png_bytes(1))]})
    assert response.status_code == 403
    assert not Stimulus.objects.exists()


def test_duplicate_upload_is_reported_not_an_error(owner_client, study):
    owner_client.post(url("study-upload", "mine"), {"files": [upload("a.png", png_bytes(1))]})
    response = owner_client.post(url("study-upload", "mine"), {"files": [upload("again.png", png_bytes(1))]})
    assert response.status_code == 302
    page = owner_client.get(url("study-detail", "mine")).content.decode()
    assert "0 imported, 1 duplicate, 0 rejected" in page and "already in this study as a.png (same file)" in page
