"""Figure 4 pictures: served to whoever may see the model or read a study it predicted (404 otherwise), with
the right content type; the uncertainty tab shows them as <img> with alt text; the owner attaches them."""
import io

import pytest
from PIL import Image

from study.models import ModelVersion
from study.services.model_figures import model_version_attach_figures
from tests.factories import UserFactory
from tests.study.compare_data import build_study
from tests.study.figure4_files import LAMBDAS_CSV, figure4_gallery_bytes, figure4_png_bytes

pytestmark = pytest.mark.django_db


@pytest.fixture
def study_with_figures(tmp_path):
    """A study owned by `owner` whose first model (private, someone else's) carries Figure 4."""
    owner = UserFactory()
    study, models = build_study(images=3, voters=2, models=1, owner=owner)
    model = models[0]
    ModelVersion.objects.filter(pk=model.pk).update(is_public=False)
    model_version_attach_figures(model_version=model, by=model.owner, lambda_export=io.BytesIO(LAMBDAS_CSV),
                                 figure4_image=io.BytesIO(figure4_png_bytes()),
                                 figure4_gallery=io.BytesIO(figure4_gallery_bytes(tmp_path, thumb=24)))
    return owner, study, ModelVersion.objects.get(pk=model.pk)


def test_study_reader_gets_thumbnails_and_the_png_with_image_types(client, study_with_figures):
    owner, _, model = study_with_figures
    client.force_login(owner)  # not the model's owner: may see it through the study it predicted
    response = client.get(f"/models/{model.pk}/figure4/0.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(response.content)) as thumb:
        assert thumb.format == "PNG" and thumb.size == (24, 24)
    response = client.get(f"/models/{model.pk}/figure4.png")
    assert response.status_code == 200 and response["Content-Type"] == "image/png"
    with Image.open(io.BytesIO(b"".join(response.streaming_content))) as figure:
        assert figure.format == "PNG" and figure.width > 32


def test_model_owner_sees_them_without_any_study(client, study_with_figures):
    _, _, model = study_with_figures
    client.force_login(model.owner)
    assert client.get(f"/models/{model.pk}/figure4/3.png").status_code == 200


def test_strangers_get_404_and_visitors_the_login_page(client, study_with_figures):
    _, _, model = study_with_figures
    assert client.get(f"/models/{model.pk}/figure4/0.png").status_code == 302  # to the login page
    client.force_login(UserFactory())
    for url in (f"/models/{model.pk}/figure4/0.png", f"/models/{model.pk}/figure4.png"):
        assert client.get(url).status_code == 404
    client.force_login(UserFactory(researcher=False))
    assert client.get(f"/models/{model.pk}/figure4.png").status_code == 403  # not a researcher at all


def test_a_public_model_shows_its_figures_to_every_researcher(client, study_with_figures):
    _, _, model = study_with_figures
    ModelVersion.objects.filter(pk=model.pk).update(is_public=True)
    client.force_login(UserFactory())
    assert client.get(f"/models/{model.pk}/figure4/1.png").status_code == 200


def test_missing_items_and_models_are_404(client, study_with_figures):
    owner, _, model = study_with_figures
    client.force_login(owner)
    assert client.get(f"/models/{model.pk}/figure4/4.png").status_code == 404
    assert client.get(f"/models/{model.pk + 999}/figure4/0.png").status_code == 404
    ModelVersion.objects.filter(pk=model.pk).update(figure4_image="", figure4_items=[])
    assert client.get(f"/models/{model.pk}/figure4.png").status_code == 404
    assert client.get(f"/models/{model.pk}/figure4/0.png").status_code == 404


def test_uncertainty_tab_shows_the_gallery_as_images_with_alt_text(client, study_with_figures):
    owner, study, model = study_with_figures
    client.force_login(owner)
    html = client.get(f"/studies/{study.slug}/compare/?tab=uncertainty").content.decode()
    for n in range(4):
        assert f'src="/models/{model.pk}/figure4/{n}.png"' in html
    assert 'alt="Training image, given label Happiness, λ 0.200; label flipped on purpose, true label Anger"' in html
    assert "<figcaption>" in html and "true: Anger" in html and f'href="/models/{model.pk}/figure4.png"' in html
    assert html.count('<section class="figure4-column"') == 2  # one column per given label


def test_uncertainty_tab_shows_the_png_alone_when_there_is_no_gallery(client, study_with_figures):
    owner, study, model = study_with_figures
    ModelVersion.objects.filter(pk=model.pk).update(figure4_items=[], figure4_gallery="")
    client.force_login(owner)
    html = client.get(f"/studies/{study.slug}/compare/?tab=uncertainty").content.decode()
    assert f'<img src="/models/{model.pk}/figure4.png" alt="Figure 4 of {model.name}' in html
    assert "figure4-column" not in html


def test_owner_attaches_figures_on_the_model_page_and_others_cannot(client, tmp_path):
    from tests.factories import ModelVersionFactory

    model = ModelVersionFactory()
    client.force_login(model.owner)
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert 'id="figures-form"' in page
    response = client.post(f"/models/{model.pk}/figures/", {
        "figure4_gallery": io.BytesIO(figure4_gallery_bytes(tmp_path)), "figure4_image": io.BytesIO(figure4_png_bytes())})
    assert response.status_code == 302
    model.refresh_from_db()
    assert len(model.figure4_items) == 4 and model.figure4_image
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert f'src="/models/{model.pk}/figure4.png"' in page and "gallery of 4 training images" in page
    bad = client.post(f"/models/{model.pk}/figures/", {"figure4_gallery": io.BytesIO(b"no zip")})
    assert bad.status_code == 400 and "not a zip file" in bad.content.decode()
    client.force_login(UserFactory())  # sees the public model, does not own it
    assert 'id="figures-form"' not in client.get(f"/models/{model.pk}/").content.decode()
    assert client.post(f"/models/{model.pk}/figures/", {"figure4_image": io.BytesIO(figure4_png_bytes())}).status_code == 403


def test_a_refused_model_offers_only_its_removal(client):
    from tests.factories import ModelVersionFactory

    model = ModelVersionFactory(status=ModelVersion.Status.INVALID, validation_error="not a model")
    client.force_login(model.owner)
    page = client.get(f"/models/{model.pk}/").content.decode()
    assert 'id="figures-form"' not in page and 'id="share-form"' not in page
    assert "Remove this refused entry" in page and "Rejected: not a model" in page
