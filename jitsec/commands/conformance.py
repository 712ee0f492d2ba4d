"""``jitsec conformance``: run AG-304's tests 8.1-8.7 against a live broker and write a scored report.

Keys come from the environment (``JITSEC_ORCHESTRATOR_KEY``, ``JITSEC_RESOURCE_KEY`` or
``JITSEC_ADMIN_KEY``, and ``JITSEC_BROKER_KEY`` for a watcher the suite starts) or from the JSON that
``jitsec broker init --json`` printed (``--keys-file``), never from an argument. Exit status: 0 every
test passed, 1 a test failed, 2 the suite could not run.
"""

from __future__ import annotations

from pathlib import Path

import click

from jitsec.conformance.policy import policy_snippet
from jitsec.conformance.settings import (
    MEMORY_DUMPS,
    TEST_IDS,
    LeakTarget,
    PrincipalKeys,
    SettingsError,
    SuiteSettings,
)

EXIT_PASSED, EXIT_FAILED, EXIT_ERROR = 0, 1, 2


def _database_of(dsn: str | None) -> str | None:
    if not dsn:
        return None
    from jitsec.conformance.resources import PostgresTarget  # noqa: PLC0415

    return PostgresTarget(dsn).database


@click.command("conformance")
@click.option(
    "--broker", "broker_url", metavar="URL", envvar="JITSEC_BROKER_URL", help="The broker's base URL."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="The broker's config: lets the suite read its store and audit (same host).",
)
@click.option(
    "--postgres",
    "postgres_dsn",
    metavar="DSN",
    envvar="JITSEC_CONFORMANCE_POSTGRES",
    help="The database the postgres engine serves (also from $JITSEC_CONFORMANCE_POSTGRES); "
    "must be allowed to create the jitsec_conformance fixture schema.",
)
@click.option(
    "--x509",
    "x509_engine",
    metavar="ENGINE",
    envvar="JITSEC_CONFORMANCE_X509",
    help="The name of an x509 engine: 8.2 also checks that completion lists the task's client "
    "certificate in the broker's CRL (also from $JITSEC_CONFORMANCE_X509).",
)
@click.option(
    "--ssh",
    "ssh_engine",
    metavar="ENGINE",
    envvar="JITSEC_CONFORMANCE_SSH",
    help="The name of an ssh engine: 8.2 also checks that completion lists the task's SSH "
    "certificate in the broker's KRL, read with ssh-keygen -Q (also from $JITSEC_CONFORMANCE_SSH).",
)
@click.option(
    "--kafka",
    "kafka_engine",
    metavar="ENGINE",
    envvar="JITSEC_CONFORMANCE_KAFKA",
    help="The name of a kafka engine: 8.2 also checks that the task's SCRAM-SHA-512 user logs in "
    "before completion and is refused after it (also from $JITSEC_CONFORMANCE_KAFKA).",
)
@click.option(
    "--kafka-bootstrap",
    metavar="HOST:PORT",
    envvar="JITSEC_CONFORMANCE_KAFKA_BOOTSTRAP",
    help="The Kafka SASL listener the --kafka login goes to (default: the servers the lease names).",
)
@click.option(
    "--leak-target",
    metavar="file:PATH|kafka://HOST:PORT/TOPIC",
    help="Where a deployment's watcher reads; default: a file watched by a watcher the suite starts.",
)
@click.option(
    "--start-watcher/--no-start-watcher",
    default=None,
    help="Start `jitsec watch` on the leak target (default: only when no target is given).",
)
@click.option(
    "--report-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("reports/conformance"),
    show_default=True,
)
@click.option(
    "--keys-file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="JSON printed by `jitsec broker init --json` (keys by role).",
)
@click.option(
    "--broker-log",
    "broker_logs",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="A broker log file or directory to search in 8.5 (repeatable).",
)
@click.option("--only", multiple=True, type=click.Choice(TEST_IDS), help="Run only these tests (repeatable).")
@click.option(
    "--agent-prefix",
    default="conformance-",
    show_default=True,
    help="Prefix of the test agents' names (the policy entry's glob).",
)
@click.option(
    "--ttl",
    "ttl_seconds",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="TTL of the short-lived secrets of 8.1, seconds.",
)
@click.option(
    "--lateness",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Allowed lateness after a TTL, seconds (8.1).",
)
@click.option(
    "--immediate",
    type=click.FloatRange(min=0),
    default=1.0,
    show_default=True,
    help="How soon after completion every secret must be dead, seconds (8.2).",
)
@click.option("--agents", type=click.IntRange(min=1), default=3, show_default=True, help="8.4: agents.")
@click.option("--tasks-per-agent", type=click.IntRange(min=1), default=2, show_default=True, help="8.4.")
@click.option("--requests-per-task", type=click.IntRange(min=1), default=3, show_default=True, help="8.4.")
@click.option(
    "--leak-threshold",
    type=click.FloatRange(min=0, min_open=True),
    default=5.0,
    show_default=True,
    help="8.7: the most seconds from a leak being written to the credential being dead.",
)
@click.option(
    "--memory-dump",
    type=click.Choice(MEMORY_DUMPS),
    default="auto",
    show_default=True,
    help="8.6: how to image the agent's memory (auto: gcore if present, else /proc/<pid>/mem).",
)
@click.option("--print-policy", is_flag=True, help="Print the policy entry the suite needs, and exit.")
def conformance(  # noqa: PLR0917 - one parameter per option, as click passes them
    broker_url: str | None,
    config_path: Path | None,
    postgres_dsn: str | None,
    x509_engine: str | None,
    ssh_engine: str | None,
    kafka_engine: str | None,
    kafka_bootstrap: str | None,
    leak_target: str | None,
    start_watcher: bool | None,
    report_dir: Path,
    keys_file: Path | None,
    broker_logs: tuple[Path, ...],
    only: tuple[str, ...],
    agent_prefix: str,
    ttl_seconds: int,
    lateness: float,
    immediate: float,
    agents: int,
    tasks_per_agent: int,
    requests_per_task: int,
    leak_threshold: float,
    memory_dump: str,
    print_policy: bool,
) -> None:
    """Run AG-304's tests 8.1-8.7 against the broker at URL; write Markdown, HTML and JSON reports.

    \b
    Examples:
      jitsec conformance --print-policy                          the policy entry the suite needs
      JITSEC_ADMIN_KEY=… jitsec conformance --broker https://broker:8470 --config broker.toml
      jitsec conformance --broker URL --config broker.toml --postgres DSN --only 8.1 --only 8.7
      jitsec conformance --broker URL --x509 x509 --ssh ssh --kafka kafka --kafka-bootstrap kafka:9094
    \b
    Exit status: 0 every test passed, 1 a test failed (the report says which and why), 2 the suite
    could not run (bad settings, broker unreachable).
    """
    if print_policy:
        click.echo(policy_snippet(agent_prefix, _database_of(postgres_dsn), x509_engine, ssh_engine,
                                  kafka_engine), nl=False)
        return
    if not broker_url:
        raise click.UsageError("--broker URL is required (or $JITSEC_BROKER_URL)")
    try:
        settings = SuiteSettings(
            broker_url=broker_url,
            keys=PrincipalKeys.load(keys_file=keys_file),
            report_dir=report_dir,
            config_path=config_path,
            postgres_dsn=postgres_dsn,
            x509_engine=x509_engine,
            ssh_engine=ssh_engine,
            kafka_engine=kafka_engine,
            kafka_bootstrap=kafka_bootstrap,
            leak_target=LeakTarget.parse(leak_target) if leak_target else None,
            start_watcher=start_watcher,
            broker_logs=broker_logs,
            agent_prefix=agent_prefix,
            ttl_seconds=ttl_seconds,
            lateness_seconds=lateness,
            immediate_seconds=immediate,
            agents=agents,
            tasks_per_agent=tasks_per_agent,
            requests_per_task=requests_per_task,
            leak_threshold_seconds=leak_threshold,
            memory_dump=memory_dump,
            only=only,
        )
    except SettingsError as error:
        raise click.UsageError(str(error)) from None
    from jitsec.conformance.report import write_reports  # noqa: PLC0415 - the suite loads on use
    from jitsec.conformance.runner import Suite, SuiteError  # noqa: PLC0415

    suite = Suite(settings)
    try:
        report = suite.run()
    except SuiteError as error:
        click.echo(f"conformance: {error}", err=True)
        raise SystemExit(EXIT_ERROR) from None
    paths = write_reports(report, report_dir, secrets=suite.ledger.values())
    for result in report.results:
        mark = "PASS" if result.passed else result.outcome.value.upper()
        failed = [c.name for c in result.checks if not c.passed]
        extra = f" ({'; '.join(failed[:3])})" if failed else (f" ({result.error})" if result.error else "")
        click.echo(f"{result.test_id} {result.title}: {mark}{extra}")
    click.echo(
        f"score {report.score:g}/100, maturity {report.maturity.level}; "
        f"report: {paths['markdown']}, {paths['html']}, {paths['json']}"
    )
    raise SystemExit(EXIT_PASSED if report.passed else EXIT_FAILED)
