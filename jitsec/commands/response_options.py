"""The leak response's command-line options, shared by ``scan``, ``watch`` and the hooks.

    @click.command()
    @response_options
    def scan(..., response: ResponseOptions) -> None:
        pipeline = build_pipeline(PipelineSettings(response=response, ...))   # the response is a stage

The scanner principal's key comes ONLY from ``$JITSEC_BROKER_KEY`` (an argument would land in shell
history and ``ps``).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from jitsec.connectors.sinks import ALERT_SPEC_HELP, parse_alert_spec
from jitsec.connectors.sinks.alert import CONSOLE_ENV, SCANNER_ENV, default_scanner_name
from jitsec.kernel.leaks import LeakScope
from jitsec.response.options import KEY_ENV, STATE_ENV, URL_ENV, ResponseOptions, default_state_dir

F = TypeVar("F", bound=Callable[..., Any])


def _check_alerts(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> tuple[str, ...]:
    for spec in value:
        try:
            parse_alert_spec(spec)
        except ValueError as error:
            raise click.BadParameter(str(error), ctx=ctx, param=param) from None
    return value


_OPTIONS = (
    click.option("--broker", "broker_url", metavar="URL", envvar=URL_ENV, default=None,
                 help=f"Report broker-format hits to this broker (or ${URL_ENV}); the scanner key is "
                      f"read from ${KEY_ENV} only."),
    click.option("--alert", "alerts", metavar="SPEC", multiple=True, callback=_check_alerts,
                 help=f"Send incidents to a sink: {ALERT_SPEC_HELP}."),
    click.option("--on-leak", type=click.Choice([s.value for s in LeakScope]), default=None,
                 help="What a live leaked credential costs: its lease (default), its whole task, or "
                      "every lease of its agent (quarantine)."),
    click.option("--state-dir", type=click.Path(file_okay=False, path_type=Path), envvar=STATE_ENV,
                 default=None, help="Where alert spools and the leak outbox live "
                                    "(default ~/.local/state/jitsec)."),
    click.option("--scanner-name", metavar="NAME", envvar=SCANNER_ENV, default=None,
                 help=f"Who alerts say saw the leak (or ${SCANNER_ENV}; default jitsec@HOSTNAME)."),
    click.option("--console-url", metavar="URL", envvar=CONSOLE_ENV, default=None,
                 help=f"Alerts link to URL/console/incidents/ID (or ${CONSOLE_ENV})."),
)


def response_options(command: F) -> F:
    """Adds ``--broker``, ``--alert``, ``--on-leak``, ``--state-dir``, ``--scanner-name``,
    ``--console-url`` and passes ``response=``."""

    @functools.wraps(command)
    def wrapper(*args: Any, broker_url: str | None, alerts: tuple[str, ...], on_leak: str | None,
                state_dir: Path | None, scanner_name: str | None, console_url: str | None,
                **kwargs: Any) -> Any:
        key = os.environ.get(KEY_ENV) or None
        if broker_url and not key:
            raise click.UsageError(f"--broker needs the scanner principal's key in ${KEY_ENV}")
        if broker_url and not broker_url.startswith(("http://", "https://")):
            raise click.BadParameter(f"{broker_url!r} is not an http(s):// URL", param_hint="--broker")
        kwargs["response"] = ResponseOptions(
            broker_url=broker_url, alerts=tuple(alerts),
            on_leak=LeakScope(on_leak) if on_leak else None,
            state_dir=state_dir or default_state_dir(), broker_key=key,
            scanner_name=scanner_name or default_scanner_name(), console_url=console_url or None,
        )
        return command(*args, **kwargs)

    decorated: Any = wrapper
    for option in reversed(_OPTIONS):
        decorated = option(decorated)
    return decorated


