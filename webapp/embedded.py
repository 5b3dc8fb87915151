"""The environment of `make run`'s server and worker (manage.py run_embedded): DEBUG off, zero configuration.

Anything already set in the environment wins; otherwise the embedded default serves with DEBUG off, a secret key
generated once into var/secret_key, the local host names (plus the address it was told to serve on) and
cookies that are not marked Secure, since it serves plain http on this machine. DEBUG=true brings Django's
debug pages back for developers.
"""
from __future__ import annotations

import socket
from collections.abc import Mapping
from pathlib import Path

LOCAL_HOSTS = ["127.0.0.1", "localhost", "[::1]"]
WILDCARD_HOSTS = {"0.0.0.0", "::", "[::]", ""}


def _truthy(value: str) -> bool:
    return value.strip().lower() in {"true", "on", "ok", "y", "yes", "1"}  # what django-environ's env.bool reads


def served_host_names(host: str) -> list[str]:
    """Host names a browser may send for a server bound to `host`: the local names, the address itself and,
    for a wildcard address, this machine's name and addresses."""
    names = list(LOCAL_HOSTS)
    if host in WILDCARD_HOSTS:
        extra = [socket.gethostname(), socket.getfqdn()]
        try:
            extra += socket.gethostbyname_ex(socket.gethostname())[2]
        except OSError:
            pass
        if host != "0.0.0.0":
            extra.append(f"[{host.strip('[]')}]" if ":" in host else host)
    else:
        extra = [f"[{host}]" if ":" in host and not host.startswith("[") else host]
    for name in extra:
        if name and name not in names:
            names.append(name)
    return names


def embedded_environment(environ: Mapping[str, str], host: str, var_dir: Path) -> dict[str, str]:
    """`environ` completed with the embedded default's settings (nothing already set is changed)."""
    env = dict(environ)
    env.setdefault("DEBUG", "false")
    if not _truthy(env["DEBUG"]):
        if not env.get("SECRET_KEY"):
            env.setdefault("SECRET_KEY_FILE", str(Path(var_dir) / "secret_key"))
        env.setdefault("ALLOWED_HOSTS", ",".join(served_host_names(host)))
        env.setdefault("SECURE_COOKIES", "false")  # plain http on this machine: a Secure cookie would never come back
    return env


def debug_is_on(env: Mapping[str, str]) -> bool:
    return _truthy(env.get("DEBUG", "true"))
