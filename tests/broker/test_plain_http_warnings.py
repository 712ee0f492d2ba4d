"""Warnings where a key or a password would cross a network or a process table in clear text."""

from __future__ import annotations

import logging

import pytest
from click.testing import CliRunner
from jitsec.broker.client import BrokerClient

from jitsec.cli import main


def test_a_key_sent_over_plain_http_to_another_host_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="jitsec.broker.client"):
        BrokerClient("http://127.0.0.1:8470", key="jitk_x").close()
        assert not caplog.records
        BrokerClient("https://broker.example.org", key="jitk_x").close()
        assert not caplog.records
        BrokerClient("http://broker.example.org:8470", key="jitk_x").close()
    assert "clear text to broker.example.org" in caplog.text and "jitk_x" not in caplog.text


def test_an_admin_dsn_with_a_password_in_argv_is_warned_about(tmp_path) -> None:
    dsn = "postgresql://admin:hunter2-but-longer@127.0.0.1:9/app"
    init = ["broker", "init", "--config"]
    result = CliRunner().invoke(main, [*init, str(tmp_path / "b.toml"), "--postgres", dsn])
    assert "visible to every user in ps" in result.output
    quiet = CliRunner().invoke(main, [*init, str(tmp_path / "c.toml")],
                               env={"JITSEC_POSTGRES_ADMIN_DSN": dsn})
    assert "visible to every user" not in quiet.output
    assert "hunter2" not in result.output + quiet.output


def test_serving_plain_http_beyond_loopback_is_warned_about() -> None:
    from jitsec.broker.config import ServerSettings  # noqa: PLC0415
    from jitsec.broker.server import plain_http_warning  # noqa: PLC0415

    assert plain_http_warning(ServerSettings(host="127.0.0.1")) is None
    assert plain_http_warning(ServerSettings(host="0.0.0.0", tls_cert="c.pem", tls_key="k.pem")) is None  # noqa: S104
    warning = plain_http_warning(ServerSettings(host="0.0.0.0"))  # noqa: S104
    assert warning is not None and "clear text" in warning and "tls_cert" in warning
