"""Master keys in a real PKCS#11 token (SoftHSM2): created non-extractable, used in the token by the
audit chain, its anchors and the sealing of engine secrets; a wrong PIN or a missing token or key is
a clear ``CustodyError`` naming the token, never showing the PIN."""

from __future__ import annotations

import base64
import uuid

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jitsec.broker.audit import iter_records, verify
from jitsec.broker.audit_anchor import AnchorWriter, read_checkpoints, verify_anchor
from jitsec.broker.config import parse_config
from jitsec.broker.custody.base import HSM, CustodyError, file_custody
from jitsec.broker.custody.engine_secrets import resolve_secret_options, seal_context
from jitsec.broker.custody.opening import open_custody
from jitsec.broker.custody.pkcs11_token import create_token_keys, open_session
from jitsec.broker.custody.settings import PIN_ENV, KeySettings, TokenSettings
from jitsec.broker.errors import ConfigError


def fresh_labels(softhsm, token: str | None = None) -> TokenSettings:
    tag = uuid.uuid4().hex[:8]
    return TokenSettings(module=softhsm.module, token=token or softhsm.token, audit_key_label=f"audit-{tag}",
                         anchor_key_label=f"anchor-{tag}", kek_label=f"kek-{tag}")


@pytest.fixture
def token_keys(softhsm, monkeypatch) -> TokenSettings:
    """Fresh keys in the session's token, and the PIN in the environment as the broker reads it."""
    settings = fresh_labels(softhsm)
    create_token_keys(settings, softhsm.pin).close()
    monkeypatch.setenv(PIN_ENV, softhsm.pin)
    return settings


def test_keys_are_made_in_the_token_and_cannot_be_read_out(softhsm, token_keys) -> None:
    session = open_session(token_keys, softhsm.pin)
    try:
        pkcs11 = session.pkcs11
        for label in (token_keys.audit_key_label, token_keys.anchor_key_label, token_keys.kek_label):
            key = session.secret_key(label)
            assert key[pkcs11.Attribute.SENSITIVE] and not key[pkcs11.Attribute.EXTRACTABLE]
            with pytest.raises(pkcs11.exceptions.AttributeSensitive):
                key[pkcs11.Attribute.VALUE]
    finally:
        session.close()


def test_init_never_replaces_keys_a_token_already_holds(softhsm, token_keys) -> None:
    with pytest.raises(CustodyError, match="exist already"):
        create_token_keys(token_keys, softhsm.pin)


def test_token_macs_are_deterministic_and_per_key(token_keys) -> None:
    custody = open_custody(KeySettings(custody=HSM, token=token_keys), b"")
    try:
        assert custody.kind == "pkcs11"
        assert custody.audit.mac(b"record") == custody.audit.mac(b"record")
        assert len(custody.audit.mac(b"record")) == 32
        assert custody.audit.mac(b"record") != custody.anchor.mac(b"record")
        assert custody.audit.mac(b"record") != custody.audit.mac(b"record2")
    finally:
        custody.close()


def test_a_wrong_or_missing_pin_and_a_missing_token_or_key_are_named(softhsm, token_keys, monkeypatch):
    keys = KeySettings(custody=HSM, token=token_keys)
    monkeypatch.setenv(PIN_ENV, "not-the-pin")
    with pytest.raises(CustodyError, match=f"token '{softhsm.token}'.*wrong PIN") as wrong:
        open_custody(keys, b"")
    assert "not-the-pin" not in str(wrong.value)
    monkeypatch.delenv(PIN_ENV)
    with pytest.raises(CustodyError, match=PIN_ENV):
        open_custody(keys, b"")
    monkeypatch.setenv(PIN_ENV, softhsm.pin)
    with pytest.raises(CustodyError, match=r"'no-such-token'.*no such token"):
        open_custody(KeySettings(custody=HSM, token=fresh_labels(softhsm, "no-such-token")), b"")
    with pytest.raises(CustodyError, match="no key labelled 'audit-"):
        open_custody(KeySettings(custody=HSM, token=fresh_labels(softhsm)), b"")
    with pytest.raises(CustodyError, match="cannot be loaded"):
        open_custody(KeySettings(custody=HSM, token=TokenSettings(module="/nonexistent.so", token="x")), b"")


def test_a_second_user_in_the_process_must_know_the_pin_too(softhsm, token_keys) -> None:
    first = open_session(token_keys, softhsm.pin)
    try:
        with pytest.raises(CustodyError, match="wrong PIN"):
            open_session(token_keys, "guess")
        second = open_session(token_keys, softhsm.pin)
        second.close()
        assert first.secret_key(token_keys.audit_key_label) is not None  # still logged in
    finally:
        first.close()


def test_sealed_secrets_open_only_in_their_place_and_unchanged(token_keys) -> None:
    custody = open_custody(KeySettings(custody=HSM, token=token_keys), b"")
    try:
        assert custody.sealer is not None
        blob = custody.sealer.seal("admin-p4ss", seal_context("postgres", "admin_password"))
        assert "admin-p4ss" not in blob and blob.startswith("pkcs11-aes-gcm:")
        options = {"admin_dsn": "host=db user=admin dbname=app", "admin_password_sealed": blob}
        assert resolve_secret_options("postgres", options, custody)["admin_password"] == "admin-p4ss"
        with pytest.raises(CustodyError, match="does not open"):  # moved to another engine's setting
            resolve_secret_options("other", options, custody)
        flipped = blob[:-3] + ("A" if blob[-3] != "A" else "B") + blob[-2:]
        with pytest.raises(CustodyError, match="does not open"):
            resolve_secret_options("postgres", {**options, "admin_password_sealed": flipped}, custody)
    finally:
        custody.close()
    with pytest.raises(CustodyError, match="no PKCS#11 token"):
        resolve_secret_options("postgres", options, file_custody(b"k" * 32))


def test_a_broker_with_its_keys_in_the_token_issues_revokes_and_verifies(env, serve, token_keys) -> None:
    anchor = env.tmp / "anchor.jsonl"
    raw = env.raw_config(audit={"anchor": str(anchor), "anchor_seconds": 1})
    del raw["broker"]["audit_key"]
    raw["keys"] = {"custody": "pkcs11", "module": token_keys.module, "token": token_keys.token,
                   "audit_key_label": token_keys.audit_key_label,
                   "anchor_key_label": token_keys.anchor_key_label, "kek_label": token_keys.kek_label}
    running = serve(config=parse_config(raw, source="test"))
    assert httpx.get(f"{running.url}/healthz").json() == {"status": "ok", "key_custody": "pkcs11"}
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    with running.client().task(started.task_id, started.grant, handle_sigterm=False) as task:
        task.secret("token", ["reports:read"])
    custody = running.broker.custody
    records = list(iter_records(running.broker.store))
    assert {"task_start", "issue", "revoke"} <= {r.event.kind.value for r in records}
    assert verify(custody.audit, records).ok
    assert not verify(file_custody(bytes.fromhex(env.audit_key)).audit, records).ok  # not the file key
    writer = AnchorWriter(running.broker.store, custody.anchor, anchor, 0)
    assert writer.tick()
    checkpoints, unreadable = read_checkpoints(anchor)
    assert checkpoints and not unreadable
    assert verify_anchor(custody.anchor, records, checkpoints) == []
    assert verify_anchor(custody.anchor, records[:1], checkpoints)  # a cut tail is named


@pytest.mark.parametrize("keys, broker_extra, message", [
    ({"custody": "vault"}, {}, 'keys.custody must be "file" or "pkcs11"'),
    ({"custody": "pkcs11", "token": "t"}, {}, "keys.module is required"),
    ({"custody": "pkcs11", "module": "/m.so", "token": ""}, {}, "must name the PKCS#11 library and token"),
    ({"custody": "pkcs11", "module": "/m.so", "token": "t", "pin": "1234"}, {}, "unknown key(s) pin"),
    ({"custody": "pkcs11", "module": "/m.so", "token": "t"}, {"audit_key": "ab" * 32}, "must not be set"),
])
def test_keys_section_errors_name_the_field(env, keys, broker_extra, message) -> None:
    raw = env.raw_config(broker=broker_extra)
    if keys.get("custody") == "pkcs11" and not broker_extra:
        del raw["broker"]["audit_key"]
    raw["keys"] = keys
    with pytest.raises(ConfigError) as error:
        parse_config(raw, source="b.toml")
    assert message in str(error.value) and "1234" not in str(error.value)


def test_a_token_config_needs_no_audit_key_and_names_its_labels(env, softhsm) -> None:
    raw = env.raw_config()
    del raw["broker"]["audit_key"]
    raw["keys"] = {"custody": "pkcs11", "module": softhsm.module, "token": "t", "kek_label": "my-kek"}
    config = parse_config(raw, source="b.toml")
    assert config.keys.custody == "pkcs11" and config.audit_key == b""
    assert config.keys.token is not None and config.keys.token.kek_label == "my-kek"
    assert config.keys.token.audit_key_label == "jitsec-audit"


@settings(max_examples=80, suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)
@given(blob=st.one_of(st.text(max_size=80), st.binary(max_size=60).map(
    lambda raw: "pkcs11-aes-gcm:" + base64.b64encode(raw).decode())))
def test_any_sealed_value_that_is_not_a_seal_is_refused_cleanly(token_keys, blob: str) -> None:
    custody = open_custody(KeySettings(custody=HSM, token=token_keys), b"")
    try:
        assert custody.sealer is not None
        with pytest.raises(CustodyError):  # never a crash, never a value
            custody.sealer.unseal(blob, seal_context("postgres", "admin_password"))
    finally:
        custody.close()


def test_the_fleet_fingerprint_key_comes_from_the_audit_key_in_the_token(token_keys) -> None:
    """With the audit key in a token the config has no key: the fleet key must still be secret (made
    by the token), not derived from the empty ``audit_key`` everybody could compute."""
    from jitsec.broker.custody.base import HmacKey  # noqa: PLC0415
    from jitsec.broker.incidents.desk import derive_fleet_key  # noqa: PLC0415

    custody = open_custody(KeySettings(custody=HSM, token=token_keys), b"")
    try:
        fleet_key = derive_fleet_key(custody.audit)
        assert len(fleet_key) == 32 and fleet_key == derive_fleet_key(custody.audit)
        assert fleet_key != derive_fleet_key(HmacKey(b""))
    finally:
        custody.close()
    file_key = b"\x07" * 32
    assert derive_fleet_key(file_custody(file_key).audit) == derive_fleet_key(HmacKey(file_key))
