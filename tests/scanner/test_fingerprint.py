from __future__ import annotations

import stat
from pathlib import Path

import pytest
from jitsec.scanner.fingerprint import Fingerprinter, FingerprintKeyError, default_key_path


def test_keyed_fingerprint_is_deterministic_and_key_dependent() -> None:
    one, two = Fingerprinter(b"a" * 32), Fingerprinter(b"b" * 32)
    assert one.fingerprint("hunter2") == one.fingerprint("hunter2")
    assert one.fingerprint("hunter2") != two.fingerprint("hunter2")
    assert one.fingerprint("hunter2").startswith("hmac-sha256:")
    assert len(one.fingerprint("x")) == len("hmac-sha256:") + 64
    assert "hunter2" not in repr(one) and "aaaa" not in repr(one)


def test_short_keys_are_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Fingerprinter(b"short")


def test_key_file_is_created_private_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "fingerprint.key"
    first = Fingerprinter.load_or_create(path, env={})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = Fingerprinter.load_or_create(path, env={})
    assert first.fingerprint("s") == again.fingerprint("s")


def test_environment_overrides_the_key_file(tmp_path: Path) -> None:
    env = {"JITSEC_FINGERPRINT_KEY": "00" * 32}
    from_env = Fingerprinter.load_or_create(tmp_path / "unused.key", env=env)
    assert from_env.fingerprint("s") == Fingerprinter(bytes(32)).fingerprint("s")
    assert not (tmp_path / "unused.key").exists()
    with pytest.raises(FingerprintKeyError):
        Fingerprinter.load_or_create(env={"JITSEC_FINGERPRINT_KEY": "short"})


def test_default_key_path_follows_jitsec_home(tmp_path: Path) -> None:
    assert default_key_path({"JITSEC_HOME": str(tmp_path)}) == tmp_path / "fingerprint.key"


def test_corrupt_key_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "fingerprint.key"
    path.write_text("not hex at all")
    with pytest.raises(FingerprintKeyError, match="cannot read fingerprint key"):
        Fingerprinter.load_or_create(path, env={})
