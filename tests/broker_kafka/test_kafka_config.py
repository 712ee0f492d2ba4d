"""``[engines.kafka]``: bad settings are refused with the option named, and the admin password comes
from the environment or a file, never from the config."""

from __future__ import annotations

from pathlib import Path

import pytest
from jitsec.broker.engines.base import EngineSettings
from jitsec.broker.engines.kafka import KafkaEngineConfig, create
from jitsec.broker.errors import ConfigError

BASE = {"bootstrap_servers": "127.0.0.1:9", "admin_username": "admin"}


@pytest.mark.parametrize(("options", "reason"), [
    ({"bootstrap_servers": ""}, "bootstrap_servers is required"),
    ({"admin_username": ""}, "admin_username is required"),
    ({"admin_username": "jitsec_admin"}, "must not start with user_prefix"),
    ({"admin_mechanism": "GSSAPI"}, "admin_mechanism must be one of"),
    ({"security_protocol": "TLS"}, "security protocol 'TLS'"),
    ({"agent_security_protocol": "SSL"}, "agents log in with SCRAM"),
    ({"scram_iterations": 1000}, "at least 4096"),
    ({"user_prefix": "Jit_"}, "user prefix"),
    ({"admin_password": "in the config"}, "unknown option(s) admin_password"),
])
def test_bad_settings_name_the_option(options: dict[str, object], reason: str) -> None:
    with pytest.raises(ConfigError) as raised:
        KafkaEngineConfig.from_options("kafka", BASE | options)
    assert reason in str(raised.value) and str(raised.value).startswith("engines.kafka:")


def test_the_admin_password_comes_from_the_environment_or_a_file(tmp_path: Path) -> None:
    config = KafkaEngineConfig.from_options("kafka", BASE)
    assert config.admin_password("kafka", {"JITSEC_KAFKA_ADMIN_PASSWORD": "s3cret"}) == "s3cret"
    with pytest.raises(ConfigError, match=r"no admin password in \$JITSEC_KAFKA_ADMIN_PASSWORD"):
        config.admin_password("kafka", {})
    secret_file = tmp_path / "kafka-admin.password"
    secret_file.write_text("from-file\n")
    from_file = KafkaEngineConfig.from_options("kafka", BASE | {"admin_password_file": str(secret_file)})
    assert from_file.admin_password("kafka", {}) == "from-file"
    with pytest.raises(ConfigError, match="admin_password_file"):
        missing = KafkaEngineConfig.from_options("kafka", BASE | {"admin_password_file": str(tmp_path / "x")})
        missing.admin_password("kafka", {})


def test_the_factory_builds_an_engine_whose_details_tell_agents_where_to_connect() -> None:
    settings = EngineSettings("events", options=BASE | {"agent_bootstrap_servers": "kafka.internal:9094"})
    engine = create(settings, {"JITSEC_KAFKA_ADMIN_PASSWORD": "pw"})
    try:
        assert engine.name == "events"
        assert engine.config.agent_details() == {"bootstrap_servers": "kafka.internal:9094",
                                                 "security_protocol": "SASL_PLAINTEXT",
                                                 "sasl_mechanism": "SCRAM-SHA-512"}
    finally:
        engine.close()
