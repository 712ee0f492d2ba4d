"""The encodings written by hand, checked against OpenSSH's own reader (``ssh-keygen``) and against
``cryptography``'s: KRLs of any serial set, public key lines of any key."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st
from jitsec.broker.engines.ssh_krl import encode_krl
from jitsec.broker.engines.ssh_wire import (
    UserCertificate,
    ed25519_public_blob,
    parse_ed25519_public_key,
    public_key_line,
)

CA = ed25519_public_blob(bytes(range(32)))


@settings(max_examples=25, deadline=None)
@given(st.sets(st.one_of(st.integers(1, 2**64 - 1), st.integers(1, 40)), max_size=50), st.integers(0, 2**63))
def test_ssh_keygen_lists_exactly_the_serials_of_the_krl(serials: set[int], version: int) -> None:
    path = Path(f"/tmp/jitsec-krl-{version}-{len(serials)}.krl")
    try:
        path.write_bytes(encode_krl(CA, serials, version=version, generated_at=1_800_000_000))
        listing = subprocess.run(["ssh-keygen", "-Q", "-l", "-f", str(path)], capture_output=True, text=True,
                                 check=True).stdout
    finally:
        path.unlink(missing_ok=True)
    assert f"# KRL version {version}" in listing
    listed: set[int] = set()
    for line in listing.splitlines():
        if line.startswith("serial:"):  # "serial: N" or, for consecutive serials, "serial: N-M"
            low, _, high = line.split()[1].partition("-")
            listed.update(range(int(low), int(high or low) + 1))
    assert listed == serials


@settings(deadline=None)
@given(st.binary(min_size=32, max_size=32), st.text(alphabet="abc-@.", max_size=10))
def test_a_public_key_line_round_trips_and_matches_cryptography(raw: bytes, comment: str) -> None:
    line = public_key_line(ed25519_public_blob(raw), comment=comment)
    assert parse_ed25519_public_key(line) == raw
    try:
        loaded = serialization.load_ssh_public_key(line.encode())
    except ValueError:
        return  # not every 32-byte string is a point on the curve; the wire format is all we claim
    assert isinstance(loaded, Ed25519PublicKey)
    assert loaded.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw) == raw


@settings(deadline=None)
@given(st.binary(max_size=80))
def test_any_blob_is_parsed_or_refused_with_a_value_error(blob: bytes) -> None:
    line = "ssh-ed25519 " + base64.b64encode(blob).decode()
    try:
        raw = parse_ed25519_public_key(line)
    except ValueError:
        return
    assert ed25519_public_blob(raw) == blob


@pytest.mark.parametrize(("fields", "message"), [
    ({"serial": 0}, "serial"),
    ({"valid_after": 10, "valid_before": 10}, "valid_after < valid_before"),
    ({"principals": ()}, "at least one principal"),
])
def test_a_certificate_that_could_not_mean_what_it_says_is_refused(
    fields: dict[str, object], message: str
) -> None:
    base: dict[str, object] = {"public_key": bytes(32), "serial": 1, "key_id": "k", "principals": ("p",),
                               "valid_after": 0, "valid_before": 10}
    with pytest.raises(ValueError, match=message):
        UserCertificate(**{**base, **fields})  # type: ignore[arg-type]
