"""Engine secrets kept out of the config in clear: an option ``NAME`` may instead be given as

- ``NAME_sealed = "pkcs11-aes-gcm:…"``: sealed by the token's key-encryption key (``jitsec broker
  init`` writes this when a token is configured); opened in the token at start;
- ``NAME_file = "path"``: read from a file that only its owner may read (mode 0600 or stricter);
- ``NAME_env = "VARIABLE"``: read from the environment.

``resolve_secret_options`` turns those into ``NAME`` before the engine sees its options, so engines
never learn where a secret was kept.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from jitsec.broker.custody.base import Custody, CustodyError

SEALED, FILE_SUFFIX, ENV_SUFFIX = "_sealed", "_file", "_env"
# Options of built-in engine kinds whose names end like a secret's form but which the engine takes as
# they are: a path or a variable name it reads itself (the KRL sshd reads, Kafka's own password source).
ENGINE_OWN_OPTIONS: dict[str, frozenset[str]] = {
    "ssh": frozenset({"krl_file"}),
    "kafka": frozenset({"admin_password_file", "admin_password_env", "ssl_ca_file"}),
}


def resolve_secret_options(
    section: str, options: Mapping[str, Any], custody: Custody, base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None, *, keep: Collection[str] = (),
) -> dict[str, Any]:
    """``options`` with every ``*_sealed`` / ``*_file`` / ``*_env`` replaced by the secret it names,
    except the options named in ``keep`` (the engine's own; see ``ENGINE_OWN_OPTIONS``)."""
    resolved = dict(options)
    for key, value in options.items():
        suffix = next((s for s in (SEALED, FILE_SUFFIX, ENV_SUFFIX) if key.endswith(s)), None)
        if suffix is None or key in keep:
            continue
        name = key.removesuffix(suffix)
        where = f"engines.{section}.{key}"
        if not isinstance(value, str) or not value:
            raise CustodyError(f"{where} must be a non-empty string")
        if name in resolved:
            raise CustodyError(f"engines.{section}: {name} is given twice ({key} and another form)")
        del resolved[key]
        if suffix == SEALED:
            if custody.sealer is None:
                raise CustodyError(f"{where} is sealed, but no PKCS#11 token is configured ([keys])")
            resolved[name] = custody.sealer.unseal(value, seal_context(section, name))
        elif suffix == FILE_SUFFIX:
            resolved[name] = read_private_secret(Path(value) if base_dir is None else base_dir / value, where)
        else:
            found = (environ if environ is not None else os.environ).get(value)
            if not found:
                raise CustodyError(f"{where}: the environment variable {value} is not set")
            resolved[name] = found
    return resolved


def seal_context(section: str, name: str) -> str:
    """What a sealed blob is bound to: a blob sealed for one setting does not open as another."""
    return f"jitsec engines.{section}.{name}"


def read_private_secret(path: Path, where: str) -> str:
    """The file's first line; refused when group or others may read it (the secret would be shared)."""
    try:
        mode = path.stat().st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise CustodyError(f"{where}: {path} is readable by others (mode {stat.S_IMODE(mode):o}); "
                               f"chmod 600 {path}")
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CustodyError(f"{where}: cannot read {path}: {error.strerror or error}") from None
    secret = text.splitlines()[0].strip() if text.strip() else ""
    if not secret:
        raise CustodyError(f"{where}: {path} is empty")
    return secret


def write_private_secret(path: Path, secret: str) -> None:
    """Create ``path`` with mode 0600 holding ``secret`` (init's place for a password without a token)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(secret + "\n")
    os.chmod(path, 0o600)
