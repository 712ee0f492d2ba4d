"""Configuration: `broker init` writes a working config; bad fields are named."""

from __future__ import annotations

import json
import stat

import pytest
from click.testing import CliRunner
from jitsec.broker.config import load_config, parse_config
from jitsec.broker.errors import ConfigError
from jitsec.broker.keys import key_hash
from jitsec.broker.runtime import build_broker

from jitsec.cli import main
from jitsec.kernel.credential_format import is_valid


def test_init_prints_keys_once_and_stores_hashes(tmp_path) -> None:
    path = tmp_path / "conf" / "broker.toml"
    result = CliRunner().invoke(main, ["broker", "init", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    keys = json.loads(result.output)["keys"]
    assert set(keys) == {"orchestrator", "scanner", "resource", "admin", "analyst"}
    text = path.read_text()
    for key in keys.values():
        assert is_valid(key) and key.startswith("jitk_")
        assert key not in text and key_hash(key) in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    config = load_config(path)
    demo = config.policy.for_agent("demo-agent")
    assert demo.engines["token"].scopes == ("reports:read", "reports:write")
    assert demo.max_task_ttl_seconds == 900 and demo.engines["token"].max_ttl_seconds == 900
    again = CliRunner().invoke(main, ["broker", "init", "--config", str(path)])
    assert again.exit_code != 0 and "--force" in again.output


def test_errors_name_the_field(env) -> None:
    raw = env.raw_config()
    raw["engines"]["token"]["max_ttl_secnds"] = 5
    with pytest.raises(ConfigError, match=r"engines\.token.*max_ttl_secnds"):
        build_broker(parse_config(raw))
    raw = env.raw_config(reaper={"batch_size": -1})
    with pytest.raises(ConfigError, match=r"reaper\.batch_size must be positive"):
        parse_config(raw)
    for coalesce in (-0.1, 2.0):  # a long coalescing delay would break the expiry + 1 s promise
        with pytest.raises(ConfigError, match=r"reaper\.coalesce_seconds must be from 0 to 0\.5"):
            parse_config(env.raw_config(reaper={"coalesce_seconds": coalesce}))
    assert parse_config(env.raw_config(reaper={"coalesce_seconds": 0})).reaper.coalesce_seconds == 0
    raw = env.raw_config()
    raw["policy"][0]["engines"]["vault"] = {"scopes": ["x"]}
    with pytest.raises(ConfigError, match="vault"):
        parse_config(raw)
    raw = env.raw_config()
    raw["principals"][0]["role"] = "root"
    with pytest.raises(ConfigError, match=r"principals\[0\]\.role"):
        parse_config(raw)


def test_missing_file_says_how_to_create_one(tmp_path) -> None:
    with pytest.raises(ConfigError, match="jitsec broker init"):
        load_config(tmp_path / "nope.toml")
