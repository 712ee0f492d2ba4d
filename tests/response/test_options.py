from __future__ import annotations

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from jitsec.commands.response_options import response_options
from jitsec.kernel.leaks import LeakScope
from jitsec.response.options import ResponseOptions, build_response, default_state_dir


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({"JITSEC_STATE_DIR": "/s", "JITSEC_HOME": "/h"}, Path("/s")),
        ({"JITSEC_HOME": "/h", "XDG_STATE_HOME": "/x"}, Path("/h/state")),
        ({"XDG_STATE_HOME": "/x"}, Path("/x/jitsec")),
    ],
)
def test_the_state_dir_follows_the_environment(env: dict[str, str], expected: Path) -> None:
    assert default_state_dir(env) == expected


def test_the_key_never_shows_in_repr() -> None:
    options = ResponseOptions(broker_url="http://127.0.0.1:1", broker_key="jitk_supersecretvalue")
    assert "supersecret" not in repr(options)


@click.command()
@response_options
def probe(response: ResponseOptions) -> None:
    has_key = response.broker_key is not None
    click.echo(f"{response.broker_url} {response.alerts} {response.on_leak} {has_key}")


def test_the_decorator_reads_the_key_from_the_environment_only(tmp_path: Path) -> None:
    runner = CliRunner()
    ok = runner.invoke(probe, ["--broker", "http://127.0.0.1:9", "--alert", "console", "--on-leak", "task",
                               "--state-dir", str(tmp_path)], env={"JITSEC_BROKER_KEY": "jitk_x"})
    assert ok.exit_code == 0, ok.output
    assert ok.output.strip() == f"http://127.0.0.1:9 ('console',) {LeakScope.TASK} True"
    assert runner.invoke(probe, ["--broker-key", "jitk_x"]).exit_code == 2  # no such option
    missing = runner.invoke(probe, ["--broker", "http://127.0.0.1:9"], env={"JITSEC_BROKER_KEY": ""})
    assert missing.exit_code == 2 and "JITSEC_BROKER_KEY" in missing.output
    url_from_env = runner.invoke(probe, [], env={"JITSEC_BROKER_URL": "http://b:1", "JITSEC_BROKER_KEY": "k"})
    assert url_from_env.output.startswith("http://b:1")


def test_without_broker_or_alerts_nothing_is_enabled_and_a_bare_runtime_works(tmp_path: Path) -> None:
    options = ResponseOptions(state_dir=tmp_path)
    assert not options.enabled
    runtime = build_response(options)
    assert runtime.live_fingerprints is None and runtime.client is None
    runtime.close()
