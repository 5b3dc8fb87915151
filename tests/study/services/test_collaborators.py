"""Collaborators and the one access rule (selectors/access.py): owner, editor, viewer, superuser, stranger."""
import pytest

from study.errors import AccessDenied, InvalidInput, NotFound
from study.models import Study, StudyCollaborator
from study.selectors.access import EDIT, OWN, VIEW, studies_visible_to, study_check_access, study_role
from study.services.collaborators import collaborator_remove, collaborator_set
from tests.factories import StimulusFactory, StudyFactory, UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def people():
    owner = UserFactory(username="owner", is_staff=False)
    study = StudyFactory(owner=owner, status=Study.Status.DRAFT)
    StimulusFactory(study=study)
    editor, viewer, stranger = (UserFactory(username=name, is_staff=False) for name in ("ed", "vi", "st"))
    collaborator_set(study=study, username="ed", role="editor")
    collaborator_set(study=study, username="VI", role="viewer")  # user names match case-insensitively
    root = UserFactory(username="root", is_superuser=True)
    return study, {"owner": owner, "editor": editor, "viewer": viewer, "stranger": stranger, "root": root}


def test_roles_follow_ownership_collaboration_and_superuser(people):
    study, users = people
    assert [study_role(user=users[n], study=study) for n in ("owner", "editor", "viewer", "stranger", "root")] == \
        ["owner", "editor", "viewer", None, "owner"]
    assert list(studies_visible_to(users["viewer"])) == [study]
    assert not studies_visible_to(users["stranger"]).exists()


@pytest.mark.parametrize("name, need, error", [
    ("viewer", VIEW, None), ("viewer", EDIT, AccessDenied), ("editor", EDIT, None), ("editor", OWN, AccessDenied),
    ("owner", OWN, None), ("root", OWN, None), ("stranger", VIEW, NotFound),
])
def test_check_access_raises_the_right_error(people, name, need, error):
    study, users = people
    if error is None:
        study_check_access(user=users[name], study=study, need=need)
    else:
        with pytest.raises(error):
            study_check_access(user=users[name], study=study, need=need)


def test_collaborator_rules(people):
    study, users = people
    with pytest.raises(InvalidInput, match="No researcher has the user name 'nobody'"):
        collaborator_set(study=study, username="nobody", role="viewer")
    with pytest.raises(InvalidInput, match="owns this study"):
        collaborator_set(study=study, username="owner", role="editor")
    with pytest.raises(InvalidInput, match="Unknown role"):
        collaborator_set(study=study, username="st", role="admin")
    collaborator_set(study=study, username="vi", role="editor")  # changes the role, no second row
    assert StudyCollaborator.objects.filter(study=study).count() == 2
    assert study_role(user=users["viewer"], study=study) == "editor"


def test_a_researcher_may_be_named_by_email_and_a_miss_says_what_to_do(people):
    study, users = people
    users["stranger"].email = "Stella@Example.org"
    users["stranger"].save()
    assert collaborator_set(study=study, username="stella@example.ORG", role="viewer").user == users["stranger"]
    with pytest.raises(InvalidInput, match="No researcher has the email address 'ghost@example.org'.*invite"):
        collaborator_set(study=study, username="ghost@example.org", role="viewer")
    UserFactory(username="plain", email="plain@example.org", researcher=False)  # an account, but no researcher
    with pytest.raises(InvalidInput, match="No researcher has the email address"):
        collaborator_set(study=study, username="plain@example.org", role="viewer")
    UserFactory(username="twin1", email="twin@example.org")
    UserFactory(username="twin2", email="TWIN@example.org")
    with pytest.raises(InvalidInput, match="Several researcher accounts use twin@example.org; give the user name"):
        collaborator_set(study=study, username="twin@example.org", role="viewer")
    with pytest.raises(InvalidInput, match="user name or email"):
        collaborator_set(study=study, username="  ", role="viewer")


def test_pages_enforce_the_roles(client, people):
    study, users = people
    detail, status, edit = (f"/studies/{study.slug}/", f"/studies/{study.slug}/status/", f"/studies/{study.slug}/edit/")
    client.force_login(users["stranger"])
    assert client.get(detail).status_code == 404
    client.force_login(users["viewer"])
    page = client.get(detail)
    assert page.status_code == 200 and b"read-only" in page.content and b'id="edit-link"' not in page.content
    assert client.post(status, {"status": "live"}).status_code == 403
    assert client.get(edit).status_code == 403
    assert client.get(f"/studies/{study.slug}/compare/").status_code == 200  # reading is fine
    assert client.post(f"/studies/{study.slug}/collaborators/", {"username": "st", "role": "viewer"}).status_code == 403
    client.force_login(users["editor"])
    assert client.post(status, {"status": "live"}).status_code == 302
    assert Study.objects.get(pk=study.pk).status == "live"
    assert client.get(f"/studies/{study.slug}/delete/").status_code == 403  # owner only


def test_owner_adds_and_removes_collaborators_on_the_study_page(client, people):
    study, users = people
    client.force_login(users["owner"])
    page = client.get(f"/studies/{study.slug}/").content.decode()
    assert 'id="collaborator-form"' in page and "ed" in page
    client.post(f"/studies/{study.slug}/collaborators/", {"username": "st", "role": "viewer"})
    assert study_role(user=users["stranger"], study=study) == "viewer"
    bad = client.post(f"/studies/{study.slug}/collaborators/", {"username": "ghost", "role": "viewer"}, follow=True)
    assert "No researcher has the user name &#x27;ghost&#x27;" in bad.content.decode()
    row = StudyCollaborator.objects.get(study=study, user=users["stranger"])
    client.post(f"/studies/{study.slug}/collaborators/", {"remove": row.pk})
    assert study_role(user=users["stranger"], study=study) is None
    with pytest.raises(NotFound):
        collaborator_remove(study=study, collaborator_id=row.pk)
    reloaded = client.get(f"/studies/{study.slug}/collaborators/")  # a reloaded form address: back to the page
    assert reloaded.status_code == 302 and reloaded["Location"] == f"/studies/{study.slug}/"


def test_api_lists_studies_shared_with_a_viewer(client, people):
    study, users = people
    client.force_login(users["viewer"])
    response = client.get("/api/studies/")
    assert response.status_code == 200 and study.slug in response.content.decode()


def test_a_study_shared_with_every_researcher_is_readable_but_not_a_collaboration(client):
    demo = StudyFactory(slug="demo", readable_by_all_researchers=True)
    reader = UserFactory(username="reader", is_staff=False)
    assert study_role(user=reader, study=demo) == "reader"
    with pytest.raises(NotFound):
        study_check_access(user=reader, study=demo, need=VIEW)
    collaborator_set(study=demo, username="reader", role="viewer")  # an explicit share gives the study's pages
    assert study_check_access(user=reader, study=demo, need=VIEW) == "viewer"
    assert study_role(user=UserFactory(username="outsider", researcher=False), study=demo) is None


def test_the_owner_of_a_study_shared_with_every_researcher_is_not_told_only_they_see_it(client):
    demo = StudyFactory(slug="demo", readable_by_all_researchers=True)
    client.force_login(demo.owner)
    page = client.get("/studies/demo/").content.decode()
    assert 'id="readable-by-all"' in page and "Every researcher may read this study" in page
    assert "can see this study." not in page
    private = StudyFactory()
    client.force_login(private.owner)
    assert f"Only {private.owner.username} can see this study." in client.get(f"/studies/{private.slug}/").content.decode()
