"""Adding and revoking principals in the broker's config file, one key per scanner, daemon and hook.

Each principal is a ``[[principals]]`` table (name, role, the SHA-256 of its key). New keys are
printed once and stored only as hashes. Edits are made on the text, so comments and layout survive;
the result is parsed and checked before it replaces the file (mode 0600, atomically). A running
broker reads the principals again when the file changes (``PrincipalKeys``): no restart.
"""

from __future__ import annotations

import os
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

from jitsec.broker.config import Principal, load_config
from jitsec.broker.errors import ConfigError
from jitsec.broker.keys import key_hash, new_principal_key
from jitsec.broker.model import PRINCIPAL_ROLES, Role

NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.@")


class PrincipalError(ValueError):
    """The edit is refused (the message says why); the file is unchanged."""


def list_principals(path: Path) -> tuple[Principal, ...]:
    return load_config(path).principals


def add_principal(path: Path, name: str, role: Role) -> str:
    """Append a principal with a fresh key; returns the key (shown once, stored only as its hash)."""
    if not name or len(name) > 64 or not set(name) <= NAME_CHARS:
        raise PrincipalError("a principal name is 1-64 letters, digits and - _ . @")
    if role not in PRINCIPAL_ROLES:
        raise PrincipalError(f"role must be one of {', '.join(r.value for r in PRINCIPAL_ROLES)}")
    if any(p.name == name for p in list_principals(path)):
        raise PrincipalError(f"a principal named {name!r} exists; revoke it first to replace its key")
    key = new_principal_key()
    text = path.read_text(encoding="utf-8")
    block = f'[[principals]]\nname = "{name}"\nrole = "{role.value}"\nkey_sha256 = "{key_hash(key)}"\n'
    _replace(path, text.rstrip("\n") + "\n\n" + block, lambda p: any(x.name == name for x in p))
    return key


def revoke_principal(path: Path, name: str) -> Principal:
    """Remove the principal named ``name``; its key stops working at once on a running broker. The
    last admin is never removed (no one could manage the broker any more)."""
    principals = list_principals(path)
    target = next((p for p in principals if p.name == name), None)
    if target is None:
        raise PrincipalError(f"no principal named {name!r}")
    if target.role is Role.ADMIN and sum(p.role is Role.ADMIN for p in principals) == 1:
        raise PrincipalError(f"{name!r} is the last admin; add another admin before revoking it")
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    start, end = _block_of(lines, name)
    kept = "".join(lines[:start] + lines[end:])
    _replace(path, kept, lambda p: all(x.name != name for x in p))
    return target


def _block_of(lines: list[str], name: str) -> tuple[int, int]:
    """The lines ``[start, end)`` of the ``[[principals]]`` table of ``name``."""
    headers = [i for i, line in enumerate(lines) if line.strip() == "[[principals]]"]
    for start in headers:
        end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")), len(lines))
        try:
            table = tomllib.loads("".join(lines[start + 1:end]))
        except tomllib.TOMLDecodeError:
            continue
        if table.get("name") == name:
            return start, end
    raise PrincipalError(f"the table of {name!r} is not a plain [[principals]] block; edit the file by hand")


def _replace(path: Path, text: str, holds: Callable[[tuple[Principal, ...]], bool]) -> None:
    """Write ``text`` over ``path`` if it is a valid config for which ``holds(principals)`` is true."""
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(temporary, 0o600)
        try:
            principals = load_config(Path(temporary)).principals
        except ConfigError as error:
            raise PrincipalError(f"the edited config would not load: {error}") from None
        if not holds(principals):
            raise PrincipalError("the edit did not come out as intended; the file is unchanged")
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
