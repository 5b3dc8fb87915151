"""The label set pages: edit (for its creator), the lock said on the page and enforced, copy into a new set."""
import pytest

from study.models import LabelSet, Study
from study.services.label_sets import label_set_keys
from tests.factories import StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


def test_edit_page_saves_and_the_list_links_it_for_the_creator_only(client, mine, creator):
    client.force_login(creator)
    listing = client.get("/studies/label-sets/").content.decode()
    assert f'href="/studies/label-sets/{mine.pk}/edit/"' in listing
    page = client.get(f"/studies/label-sets/{mine.pk}/edit/").content.decode()
    assert 'id="label-set-editable"' in page and "Joy\nAnger\nCalm" in page
    response = client.post(f"/studies/label-sets/{mine.pk}/edit/", {
        "name": "Mine", "emotions": "Calm = c\nJoy = j\nAnger = a", "non_emotion": "Unsure = u"})
    assert response.status_code == 302
    assert LabelSet.objects.get(pk=mine.pk).answers == ["Calm", "Joy", "Anger", "Unsure"]
    client.force_login(UserFactory())
    assert f'/studies/label-sets/{mine.pk}/edit/' not in client.get("/studies/label-sets/").content.decode()
    assert client.get(f"/studies/label-sets/{mine.pk}/edit/").status_code == 403
    assert client.get("/studies/label-sets/99999/edit/").status_code == 404


def test_locked_set_page_says_so_refuses_renames_with_409_and_takes_new_keys(client, mine, creator):
    StudyFactory(label_set=mine, status=Study.Status.LIVE, title="Main study")
    client.force_login(creator)
    page = client.get(f"/studies/label-sets/{mine.pk}/edit/").content.decode()
    assert 'id="label-set-locked"' in page and "“Main study”" in page and f"?from={mine.pk}" in page
    refused = client.post(f"/studies/label-sets/{mine.pk}/edit/", {
        "name": "Mine", "emotions": "Joy\nAnger\nCalmness", "non_emotion": "Unsure"})
    assert refused.status_code == 409 and "locked" in refused.content.decode()
    assert LabelSet.objects.get(pk=mine.pk).labels == ["Joy", "Anger", "Calm"]
    saved = client.post(f"/studies/label-sets/{mine.pk}/edit/", {
        "name": "Mine", "emotions": "Joy = j\nAnger = a\nCalm = c", "non_emotion": "Unsure = u"})
    assert saved.status_code == 302 and label_set_keys(LabelSet.objects.get(pk=mine.pk)) == ["j", "a", "c", "u"]


def test_new_label_set_can_start_from_a_copy(client, mine, creator):
    client.force_login(UserFactory())
    page = client.get(f"/studies/label-sets/new/?from={mine.pk}").content.decode()
    assert "Mine (copy)" in page and "Joy\nAnger\nCalm" in page
    assert client.get("/studies/label-sets/new/?from=nonsense").status_code == 200
