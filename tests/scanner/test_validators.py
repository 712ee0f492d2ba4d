from __future__ import annotations

import base64
import zlib
from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from jitsec.scanner.validators import VALIDATORS

from jitsec.kernel.credential_format import ALPHABET, CredentialKind, encode_base62, mint

base62 = st.text(alphabet=ALPHABET, min_size=30, max_size=30)


def github_token(prefix: str, random_part: str) -> str:
    return f"{prefix}_{random_part}{encode_base62(zlib.crc32(random_part.encode()), 6)}"


@given(kind=st.sampled_from(list(CredentialKind)))
def test_broker_validator_accepts_every_minted_credential(kind: CredentialKind) -> None:
    assert VALIDATORS["broker-crc32"](mint(kind))


@given(
    kind=st.sampled_from(list(CredentialKind)), position=st.integers(0, 45), char=st.sampled_from(ALPHABET)
)
def test_broker_validator_rejects_a_changed_character(kind: CredentialKind, position: int, char: str) -> None:
    token = mint(kind)
    body_start = len(kind.prefix)
    index = body_start + position
    changed = token[:index] + char + token[index + 1 :]
    assert VALIDATORS["broker-crc32"](changed) == (changed == token)


@given(random_part=base62, prefix=st.sampled_from(["ghp", "gho", "ghu", "ghs", "ghr"]))
def test_github_checksum_round_trip(
    random_part: str, prefix: str, last_character_changed: Callable[[str], str]
) -> None:
    token = github_token(prefix, random_part)
    assert VALIDATORS["github-crc32"](token)
    broken = last_character_changed(token)
    assert not VALIDATORS["github-crc32"](broken)
    assert not VALIDATORS["github-crc32"]("ghx_" + token[4:])
    assert not VALIDATORS["npm-crc32"](token)


@given(random_part=base62)
def test_npm_checksum_round_trip(random_part: str) -> None:
    assert VALIDATORS["npm-crc32"](github_token("npm", random_part))


def test_malformed_shapes_are_rejected() -> None:
    for value in ["", "ghp_", "ghp_short", "ghp_" + "!" * 36, "jit_" + "a" * 10]:
        assert not VALIDATORS["github-crc32"](value)
        assert not VALIDATORS["broker-crc32"](value)


def _ssh_string(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _certificate_line(key_id: bytes, cert_type: bytes = b"ssh-ed25519-cert-v01@openssh.com") -> str:
    """The head of an OpenSSH certificate (type, nonce, key, serial, type, key id) and filler; the
    validator reads no further."""
    blob = (_ssh_string(cert_type) + _ssh_string(b"n" * 32) + _ssh_string(b"k" * 32) + (7).to_bytes(8, "big")
            + (1).to_bytes(4, "big") + _ssh_string(key_id) + _ssh_string(b"rest"))
    return "ssh-ed25519-cert-v01@openssh.com " + base64.b64encode(blob).decode()


@settings(deadline=None)  # a loaded CI machine must not turn slowness into a failure
@given(st.text(alphabet="abcdefgh=- ", max_size=40))
def test_broker_ssh_certificate_validator_needs_the_brokers_key_id(suffix: str) -> None:
    validator = VALIDATORS["broker-ssh-certificate"]
    assert validator(_certificate_line(b"jitsec agent=" + suffix.encode()))
    assert not validator(_certificate_line(b"jitsec-agent=" + suffix.encode()))
    assert not validator(_certificate_line(b"jitsec agent=x", cert_type=b"ssh-rsa-cert-v01@openssh.com"))


@settings(deadline=None)
@given(st.binary(max_size=200), st.integers(0, 200))
def test_broker_ssh_certificate_validator_refuses_any_truncation_or_garbage(junk: bytes, cut: int) -> None:
    validator = VALIDATORS["broker-ssh-certificate"]
    key_id = b"jitsec agent=a task=t lease=l"
    blob = base64.b64decode(_certificate_line(key_id).split()[1])
    key_id_end = blob.index(key_id) + len(key_id)
    truncated = "ssh-ed25519-cert-v01@openssh.com " + base64.b64encode(blob[:cut]).decode()
    assert validator(truncated) == (cut >= key_id_end)  # whole up to the key id, or refused
    assert validator("ssh-ed25519-cert-v01@openssh.com " + base64.b64encode(junk).decode()) in (True, False)
    assert not validator("ssh-ed25519-cert-v01@openssh.com not*base64")
