"""With media on an object store (no local paths, as django-storages' S3Storage), workers still load checkpoints."""
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import InMemoryStorage, Storage

from study.models import ModelVersion
from study.services.models import checkpoint_path
from tests.factories import ModelVersionFactory

pytestmark = pytest.mark.django_db


class ObjectStore(Storage):
    """Like S3Storage: files can be opened but have no local path (Storage.path raises NotImplementedError)."""

    def __init__(self):
        self.inner = InMemoryStorage()

    def _open(self, name, mode="rb"):
        return self.inner._open(name, mode)

    def _save(self, name, content):
        return self.inner._save(name, content)

    def exists(self, name):
        return self.inner.exists(name)

    def delete(self, name):
        self.inner.delete(name)


def test_a_checkpoint_without_a_local_path_is_copied_once_into_the_cache(settings, tmp_path, monkeypatch):
    settings.MODEL_CACHE_DIR = tmp_path / "cache"
    model = ModelVersionFactory(sha256="ab" * 32)
    monkeypatch.setattr(ModelVersion._meta.get_field("checkpoint"), "storage", ObjectStore())
    model.checkpoint.save("m.pt", ContentFile(b"weights"), save=False)
    with pytest.raises(NotImplementedError):
        _ = model.checkpoint.path
    local = checkpoint_path(model)
    assert local == tmp_path / "cache" / f"{'ab' * 32}.pt" and local.read_bytes() == b"weights"
    model.checkpoint.storage.delete(model.checkpoint.name)
    assert checkpoint_path(model).read_bytes() == b"weights"  # cached by content hash: no second download
