"""``jitsec broker principals add|list|revoke``: one key per scanner, daemon and hook, shown once,
stored as a hash, effective on a running broker without a restart."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
from click.testing import CliRunner
from jitsec.broker.api.app import create_app
from jitsec.broker.config import load_config
from jitsec.broker.loopback import LoopbackServer
from jitsec.broker.runtime import build_broker

from jitsec.cli import main
from jitsec.kernel.credential_format import sha256_fingerprint
from jitsec.testing import wait_until


def cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def principals(config: Path, *args: str) -> tuple[int, str]:
    """``jitsec broker principals SUBCOMMAND --config CONFIG ARGS...``"""
    return cli("broker", "principals", args[0], "--config", str(config), *args[1:])


def initialised(tmp_path: Path) -> Path:
    config = tmp_path / "broker.toml"
    code, output = cli("broker", "init", "--config", str(config), "--json")
    assert code == 0, output
    config.write_text(config.read_text() + "\n# kept: an operator's note\n")
    return config


def test_add_list_and_revoke_keep_keys_out_of_the_file(tmp_path: Path) -> None:
    config = initialised(tmp_path)
    code, output = principals(config, "add", "hooks-alice", "--role", "scanner", "--json")
    assert code == 0, output
    added = json.loads(output)
    assert added["name"] == "hooks-alice" and added["key"].startswith("jitk_")
    text = config.read_text()
    assert added["key"] not in text and sha256_fingerprint(added["key"]) in text
    assert "# kept: an operator's note" in text and stat.S_IMODE(config.stat().st_mode) == 0o600
    code, listed = principals(config, "list", "--json")
    assert code == 0 and {"name": "hooks-alice", "role": "scanner",
                          "key_sha256": sha256_fingerprint(added["key"])[:12]} in json.loads(listed)
    assert added["key"] not in listed

    assert principals(config, "add", "hooks-alice", "--role", "admin")[0] == 2
    assert principals(config, "add", "bad name!", "--role", "admin")[0] == 2
    assert principals(config, "revoke", "hooks-alice")[0] == 0
    assert all(p.name != "hooks-alice" for p in load_config(config).principals)
    assert principals(config, "revoke", "hooks-alice")[0] == 2
    code, output = principals(config, "revoke", "admin")
    assert code == 2 and "last admin" in output  # nobody could manage the broker any more
    assert any(p.name == "admin" for p in load_config(config).principals)


def test_a_running_broker_takes_new_and_revoked_keys_without_a_restart(tmp_path: Path) -> None:
    config = initialised(tmp_path)
    broker = build_broker(load_config(config))
    server = LoopbackServer(create_app(broker, config_path=config)).start()
    try:
        def status(key: str) -> int:
            headers = {"Authorization": f"Bearer {key}"}
            return httpx.get(f"{server.url}/v1/fingerprints", headers=headers).status_code

        code, output = principals(config, "add", "daemon-eu1", "--role", "scanner", "--json")
        assert code == 0, output
        key = json.loads(output)["key"]
        assert wait_until(lambda: status(key) == 200, 10)
        assert principals(config, "revoke", "daemon-eu1")[0] == 0
        assert wait_until(lambda: status(key) == 401, 10)
        config.write_text("this is not toml [")  # a broken edit keeps the last good set
        assert wait_until(lambda: status(key) == 401, 3)
    finally:
        server.stop()
        broker.close()
