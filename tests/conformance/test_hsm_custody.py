"""The HSM requirement of the maturity model: verified when the broker's master keys are in a PKCS#11
token (a real SoftHSM2 one here), i.e. /healthz reports ``pkcs11`` and the suite verified the audit
chain through the token; still listed as unverified against a broker whose keys are in its file."""

from __future__ import annotations

import tomllib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import tomli_w
from jitsec.broker.api.app import create_app
from jitsec.broker.config import load_config
from jitsec.broker.custody.pkcs11_token import create_token_keys
from jitsec.broker.custody.settings import PIN_ENV, TokenSettings
from jitsec.broker.loopback import LoopbackServer as Server
from jitsec.broker.runtime import build_broker

from jitsec.conformance.maturity import HSM_ITEM
from jitsec.conformance.resources import PostgresTarget
from jitsec.conformance.runner import SuiteError
from tests.conformance.conftest import Deployment, _database, _drop_roles, write_config

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def token_deployment(
    postgres_dsn: str, softhsm, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """The project's broker with its audit, anchor and key-encryption keys in the SoftHSM2 token."""
    directory = tmp_path_factory.mktemp("hsm-deployment")
    prefix = f"jc{uuid.uuid4().hex[:6]}_"
    tag = uuid.uuid4().hex[:8]
    token = TokenSettings(module=softhsm.module, token=softhsm.token, audit_key_label=f"audit-{tag}",
                          anchor_key_label=f"anchor-{tag}", kek_label=f"kek-{tag}")
    create_token_keys(token, softhsm.pin).close()
    with _database(postgres_dsn) as dsn, pytest.MonkeyPatch.context() as patch:
        patch.setenv(PIN_ENV, softhsm.pin)
        PostgresTarget(dsn).ensure_fixture()
        config_path, keys = write_config(directory, dsn, prefix)
        raw = tomllib.loads(config_path.read_text(encoding="utf-8"))
        del raw["broker"]["audit_key"]
        raw["keys"] = {"custody": "pkcs11", "module": token.module, "token": token.token,
                       "audit_key_label": token.audit_key_label, "anchor_key_label": token.anchor_key_label,
                       "kek_label": token.kek_label}
        config_path.write_text(tomli_w.dumps(raw), encoding="utf-8")
        log_path = directory / "broker.log"
        log_path.touch()
        broker = build_broker(load_config(config_path))
        server = Server(create_app(broker)).start()
        try:
            yield Deployment(server.url, config_path, keys, log_path, dsn, broker)
        finally:
            server.stop()
            broker.close()
            _drop_roles(postgres_dsn, prefix)


def test_keys_in_a_token_mark_the_hsm_requirement_verified(token_deployment, tmp_path: Path) -> None:
    report, _ = token_deployment.run(tmp_path, only=("8.4",))
    assert report.results[0].passed
    assert HSM_ITEM not in report.maturity.unverified
    assert any("PKCS#11 token" in reason for reason in report.maturity.reasons)
    assert any("HSM requirement verified" in note for note in report.suite_notes)


def test_keys_in_the_config_file_leave_it_unverified(deployment, tmp_path: Path) -> None:
    report, _ = deployment.run(tmp_path, only=("8.4",))
    assert report.results[0].passed
    assert HSM_ITEM in report.maturity.unverified
    assert any("custody: file" in note for note in report.suite_notes)


def test_without_the_config_a_token_is_claimed_but_not_verified(token_deployment, tmp_path: Path) -> None:
    report, _ = token_deployment.run(tmp_path, only=("8.4",), config_path=None)
    assert HSM_ITEM in report.maturity.unverified
    assert any("reports its master keys in a token" in note for note in report.suite_notes)


def test_the_tokens_pin_missing_is_a_clear_suite_error(token_deployment, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv(PIN_ENV, raising=False)
    with pytest.raises(SuiteError, match=f"--config: .*{PIN_ENV}"):
        token_deployment.run(tmp_path, only=("8.4",))
