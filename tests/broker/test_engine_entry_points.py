"""A separate package adds an engine kind through the ``jitsec.engines`` entry-point group: a real
distribution (module + ``dist-info`` with ``entry_points.txt``) put on ``sys.path``, found by
``importlib.metadata`` as pip would install it; no change to the broker."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from jitsec.broker.engines.base import EngineSettings
from jitsec.broker.engines.registry import build_engine, known_kinds
from jitsec.broker.errors import ConfigError

from tests.broker.engine_contract import ContractCase, check_engine_contract

ENGINE_MODULE = '''
"""A third-party engine: opaque tokens with its own prefix, nothing to undo on revoke."""
import secrets

from jitsec.broker.engines.base import EngineLimits, IssuedCredential, RevokeOutcome
from jitsec.broker.errors import ConfigError, ScopeError


class EchoEngine:
    def __init__(self, name, limits):
        self.name, self.limits, self.revoked = name, limits, set()

    def validate_scopes(self, scopes):
        for scope in scopes:
            if not scope.startswith("echo:"):
                raise ScopeError("echo scopes start with echo:")

    def issue(self, request):
        return IssuedCredential(secret="echo_" + secrets.token_hex(20), handle=request.lease_id)

    def revoke(self, handle):
        if handle in self.revoked:
            return RevokeOutcome.ALREADY_GONE
        self.revoked.add(handle)
        return RevokeOutcome.REVOKED

    def close(self):
        pass


def create(settings):
    if settings.options:
        raise ConfigError(f"engines.{settings.name}: the echo engine takes no options")
    return EchoEngine(settings.name, settings.limits)


def not_an_engine(settings):
    return object()


def explodes(settings):
    raise RuntimeError("password=hunter2 in a message that must not be shown")
'''


@pytest.fixture
def installed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``jitsec-echo-engine`` 1.0 as pip lays it out in site-packages."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "jitsec_echo_engine.py").write_text(ENGINE_MODULE)
    dist = site / "jitsec_echo_engine-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: jitsec-echo-engine\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(textwrap.dedent("""\
        [jitsec.engines]
        echo = jitsec_echo_engine:create
        hollow = jitsec_echo_engine:not_an_engine
        explodes = jitsec_echo_engine:explodes
        missing = jitsec_echo_engine_gone:create
        token = jitsec_echo_engine:create
        """))
    monkeypatch.syspath_prepend(str(site))
    return site


def test_an_installed_package_adds_an_engine_kind(installed: Path, caplog: pytest.LogCaptureFixture) -> None:
    assert "echo" in known_kinds()
    engine = build_engine("echo", EngineSettings(name="mine"))
    assert type(engine).__module__ == "jitsec_echo_engine"
    check_engine_contract(ContractCase(engine=engine, scopes=("echo:read",), stateful_revoke=True), caplog)


def test_a_built_in_kind_cannot_be_replaced_by_a_package(installed: Path) -> None:
    engine = build_engine("token", EngineSettings(name="token"))
    assert type(engine).__module__ == "jitsec.broker.engines.token"


@pytest.mark.parametrize(("kind", "message"), [
    ("hollow", "did not return an Engine"),
    ("explodes", "failed to build the engine: RuntimeError"),
    ("missing", "cannot load jitsec_echo_engine_gone:create .* ModuleNotFoundError"),
    ("nothing", "unknown engine kind 'nothing' .*echo.*jitsec.engines"),
])
def test_a_broken_entry_point_is_a_config_error_naming_it(installed: Path, kind: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as caught:
        build_engine(kind, EngineSettings(name="x"))
    assert "hunter2" not in str(caught.value)
    if kind != "nothing":
        assert "jitsec-echo-engine 1.0" in str(caught.value)


def test_the_package_s_own_config_error_reaches_the_operator(installed: Path) -> None:
    with pytest.raises(ConfigError, match="takes no options"):
        build_engine("echo", EngineSettings(name="x", options={"color": "red"}))


def test_a_broker_serves_the_installed_kind_over_http(installed: Path, serve, env) -> None:
    config = env.config(
        engines={"token": {}, "echo": {}},
        policy=[{"agent": "demo-agent", "engines": {"echo": {"scopes": ["echo:*"]}}}],
    )
    running = serve(config)
    started = running.client("orchestrator").start_task("demo-agent", "t", ["echo:read"])
    with running.client().task(started.task_id, started.grant) as task:
        secret = task.secret("echo", scopes=["echo:read"])
        assert secret.value.startswith("echo_")
    assert running.broker.engines["echo"].revoked == {secret.lease_id}  # completion revoked it there
