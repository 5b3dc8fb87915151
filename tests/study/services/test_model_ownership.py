"""Every model has an owner: only they delete or share it; others see it only when shared or public."""
import io

import pytest
from django.core.management import CommandError, call_command

from study.models import ModelVersion, PredictionJob
from study.services.models import _without_server_paths
from tests.checkpoints import write_tiny_checkpoint
from tests.factories import ModelVersionFactory, StimulusFactory, StudyFactory, UserFactory

# on_commit must fire to enqueue validation
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("eager_celery")]


@pytest.fixture
def people():
    return UserFactory(username="ann"), UserFactory(username="bob"), UserFactory(username="cy")


def _register(path, name, owner, **kwargs):
    call_command("register_model", str(path), name=name, owner=owner, stdout=io.StringIO(), timeout=20, **kwargs)
    return ModelVersion.objects.get(name=name, owner__username=owner)


def test_register_model_needs_an_existing_owner(tmp_path, people):
    path = write_tiny_checkpoint(tmp_path / "tiny.pt")
    with pytest.raises(CommandError, match="--owner"):
        call_command("register_model", str(path), name="m", stdout=io.StringIO())
    with pytest.raises(CommandError, match="no user named 'zed'"):
        call_command("register_model", str(path), name="m", owner="zed", stdout=io.StringIO())
    model = _register(path, "m", "ann")
    assert model.owner.username == "ann" and not model.is_public


def test_names_are_unique_per_owner_not_across_owners(tmp_path, people):
    path = write_tiny_checkpoint(tmp_path / "tiny.pt")
    ann_model = _register(path, "baseline", "ann")
    bob_model = _register(path, "baseline", "bob")  # same name and even the same file: another owner
    assert ann_model.pk != bob_model.pk
    with pytest.raises(CommandError, match="already"):
        _register(write_tiny_checkpoint(tmp_path / "other.pt", seed=1), "baseline", "ann")
    with pytest.raises(CommandError, match="several models are named 'baseline'"):
        call_command("predict_study", StudyFactory().slug, model="baseline", stdout=io.StringIO())


def test_a_private_model_is_invisible_and_unusable_to_other_researchers(client, people):
    ann, bob, _ = people
    model = ModelVersionFactory(owner=ann, is_public=False, name="ann-private")
    study = StudyFactory(owner=bob)
    StimulusFactory(study=study)
    client.force_login(bob)
    assert b"ann-private" not in client.get("/models/").content
    assert client.get(f"/models/{model.pk}/").status_code == 404
    assert client.get(f"/models/{model.pk}/status.json").status_code == 404
    assert b"ann-private" not in client.get(f"/studies/{study.slug}/predict/").content
    response = client.post(f"/studies/{study.slug}/predict/", {"model": model.pk})
    assert response.status_code == 400 and not PredictionJob.objects.exists()
    assert client.post(f"/models/{model.pk}/delete/").status_code == 404
    assert ModelVersion.objects.filter(pk=model.pk).exists()


def test_owner_shares_with_named_researchers_who_may_run_but_not_delete(client, people):
    ann, bob, cy = people
    model = ModelVersionFactory(owner=ann, is_public=False, name="shared-one")
    client.force_login(ann)
    assert client.post(f"/models/{model.pk}/share/", {"usernames": "bob, nobody"}).status_code == 400
    assert client.post(f"/models/{model.pk}/share/", {"usernames": "bob"}).status_code == 302
    client.force_login(bob)
    assert b"shared-one" in client.get("/models/").content
    study = StudyFactory(owner=bob)
    StimulusFactory(study=study)
    assert client.post(f"/studies/{study.slug}/predict/", {"model": model.pk}).status_code == 302
    assert client.post(f"/models/{model.pk}/delete/").status_code == 403
    assert client.post(f"/models/{model.pk}/share/", {"public": "on"}).status_code == 403
    assert ModelVersion.objects.filter(pk=model.pk, is_public=False).exists()
    client.force_login(cy)
    assert client.get(f"/models/{model.pk}/").status_code == 404


def test_a_public_model_is_visible_to_everyone_and_deleted_only_by_its_owner(client, people):
    ann, bob, _ = people
    model = ModelVersionFactory(owner=ann, is_public=False, name="pub")
    client.force_login(ann)
    client.post(f"/models/{model.pk}/share/", {"usernames": "", "public": "on"})
    boss = UserFactory(is_superuser=True, is_staff=True)
    for other in (bob, boss):
        client.force_login(other)
        assert client.get(f"/models/{model.pk}/").status_code == 200
        assert client.post(f"/models/{model.pk}/delete/").status_code == 403
    client.force_login(ann)
    assert client.post(f"/models/{model.pk}/delete/").status_code == 302
    assert not ModelVersion.objects.filter(pk=model.pk).exists()


def test_deleting_one_owners_copy_keeps_the_other_owners_file(tmp_path, settings, client, people):
    path = write_tiny_checkpoint(tmp_path / "tiny.pt")
    ann_model, bob_model = _register(path, "m", "ann"), _register(path, "m", "bob")
    client.force_login(people[0])
    assert client.post(f"/models/{ann_model.pk}/delete/").status_code == 302
    assert (settings.MEDIA_ROOT / bob_model.checkpoint.name).exists()


def test_validation_errors_never_show_server_paths(client, people, settings, tmp_path, monkeypatch):
    from ml import predictor

    def refuse(path, **kwargs):
        raise predictor.CheckpointError(f"cannot read {path}: unexpected end of data (see /var/log/x.log)")

    monkeypatch.setattr(predictor, "load_predictor", refuse)
    client.force_login(people[0])
    with open(write_tiny_checkpoint(tmp_path / "tiny.pt"), "rb") as handle:
        client.post("/models/", {"name": "broken", "checkpoint": handle})
    model = ModelVersion.objects.get(name="broken")
    assert model.status == "invalid" and "unexpected end of data" in model.validation_error
    assert str(settings.MEDIA_ROOT) not in model.validation_error and "/var/log" not in model.validation_error
    assert "cannot read the uploaded file: unexpected" in model.validation_error  # not the stored sha256 name
    assert str(settings.MEDIA_ROOT).encode() not in client.get("/models/").content


@pytest.mark.parametrize("message, expected", [
    ("cannot read /srv/media/models/ab/abc.pt: bad", "cannot read abc.pt: bad"),
    ("No such file: '/tmp/pytest-1/x/ckpt.pt'", "No such file: 'ckpt.pt'"),
    ("expected 7 classes / got 8, ratio 1/2", "expected 7 classes / got 8, ratio 1/2"),
])
def test_server_paths_are_cut_to_the_file_name(message, expected):
    assert _without_server_paths(message) == expected
