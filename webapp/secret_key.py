"""A secret key generated on first use and kept in a file, so `make run` needs no configuration with DEBUG off.

The file (var/secret_key by default) is created once with mode 0600 and read by every later process (the web
server and the embedded worker share it); var/ is ignored by git, so the key is never committed.
"""
from __future__ import annotations

import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured


def persisted_secret_key(path: Path) -> str:
    """The key stored at `path`, created there first if missing (safe when two processes race to create it)."""
    path = Path(path)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(50) + "\n")
        try:
            os.link(draft, path)  # atomic and never overwrites: a process that raced us keeps its key
        except FileExistsError:
            pass
        finally:
            draft.unlink()
    key = path.read_text().strip()
    if len(key) < 50:
        raise ImproperlyConfigured(f"{path} holds no usable secret key: delete it to have a new one generated")
    return key
