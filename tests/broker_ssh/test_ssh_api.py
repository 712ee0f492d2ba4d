"""The public SSH routes: served without authentication when an ssh engine exists, a clear 404 when
none (or not the one named) does."""

from __future__ import annotations

from pathlib import Path

import httpx

from jitsec.testing import EmbeddedBroker

from .conftest import ssh_engine_options


def test_routes_name_the_missing_engine_with_a_404(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path).start()  # the token engine only
    try:
        for route in ("/v1/ssh/ca.pub", "/v1/ssh/krl"):
            answer = httpx.get(broker.url + route, timeout=10)
            assert answer.status_code == 404
            assert answer.json() == {"error": "unknown_engine", "detail": "no ssh engine is configured"}
    finally:
        broker.close()


def test_two_ssh_engines_are_told_apart_by_name(tmp_path: Path) -> None:
    broker = EmbeddedBroker(tmp_path, engines={
        "ssh-prod": ssh_engine_options(tmp_path / "prod", str(tmp_path / "prod" / "r.krl")),
        "ssh-lab": ssh_engine_options(tmp_path / "lab", str(tmp_path / "lab" / "r.krl")),
    }).start()
    try:
        assert httpx.get(f"{broker.url}/v1/ssh/ca.pub", timeout=10).status_code == 404  # which one?
        keys = {name: httpx.get(f"{broker.url}/v1/ssh/ca.pub", params={"engine": name}, timeout=10)
                for name in ("ssh-prod", "ssh-lab", "token")}
        assert keys["ssh-prod"].text.strip() == (tmp_path / "prod" / "ssh-ca.pub").read_text().strip()
        assert keys["ssh-lab"].text.strip() == (tmp_path / "lab" / "ssh-ca.pub").read_text().strip()
        assert keys["ssh-prod"].text != keys["ssh-lab"].text
        assert keys["token"].status_code == 404  # an engine, but not an ssh one
        krl = httpx.get(f"{broker.url}/v1/ssh/krl", params={"engine": "ssh-lab"}, timeout=10)
        assert krl.status_code == 200 and krl.content.startswith(b"SSHKRL\n\x00")
        assert krl.headers["cache-control"] == "no-store"
    finally:
        broker.close()
