"""A replayed grant ends its task (``[broker] on_grant_replay``), over real HTTP.

Two presentations of one grant mean it left the agent, and the broker cannot tell which presenter is
the thief: when the thief redeemed first, the legitimate agent's redemption is the replay. So by default
the replay revokes every lease of the task, the token the first redemption returned included.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner
from jitsec.broker.audit import record_to_dict
from jitsec.broker.client import BrokerAPIError
from jitsec.broker.config import BrokerConfig, load_config, parse_config
from jitsec.broker.errors import ConfigError
from jitsec.broker.model import AuditKind, LeaseState
from jitsec.broker.policy import ReplayAction
from jitsec.broker.service import GRANT_REPLAY_REASON
from jitsec.broker.store.base import Store

from jitsec.cli import main

SCOPES = ["reports:read"]


def audit(running: Any) -> list[Any]:
    return [r.event for r in running.broker.store.audit_records(limit=100_000)]


def metric(running: Any, name: str, **labels: str) -> float:
    return running.broker.metrics.registry.get_sample_value(name, labels) or 0.0


def refused(call: Callable[[], object]) -> BrokerAPIError:
    with pytest.raises(BrokerAPIError) as error:
        call()
    return error.value


def token_works(running: Any, task_id: str, token: str) -> bool:
    try:
        running.client().get_task(task_id, bearer=token)
    except BrokerAPIError as error:
        assert error.status == 401
        return False
    return True


def start_redeem_issue(running: Any) -> tuple[Any, str, dict[str, Any]]:
    """A task whose grant was redeemed once and which holds one secret: (started, token, secret body)."""
    started = running.client("orchestrator").start_task("demo-agent", "replay", SCOPES)
    token, _ = running.client().redeem(started.task_id, started.grant)
    secret = running.client().request(
        "POST", "/v1/secrets", bearer=token, json={"engine": "token", "scopes": SCOPES}
    )
    assert running.client("resource").introspect(secret["secret"])["active"] is True
    assert token_works(running, started.task_id, token)
    return started, token, secret


def test_a_replay_ends_the_task_and_revokes_every_lease(serve) -> None:
    running = serve()
    started, token, secret = start_redeem_issue(running)

    error = refused(lambda: running.client().redeem(started.task_id, started.grant))
    assert error.status == 401 and error.code == "grant_replayed"
    assert "ended" in error.detail

    assert running.client("resource").introspect(secret["secret"])["active"] is False
    assert running.client("resource").introspect(token)["active"] is False
    assert not token_works(running, started.task_id, token)
    assert running.client("orchestrator").get_task(started.task_id)["completed_at"] is not None
    leases = running.broker.store.leases_of_task(started.task_id)
    assert len(leases) == 2 and {lease.state for lease in leases} == {LeaseState.REVOKED}
    assert {lease.revoke_reason for lease in leases} == {GRANT_REPLAY_REASON}

    events = audit(running)
    replay = [e for e in events if e.kind is AuditKind.REPLAY]
    assert len(replay) == 1
    assert (replay[0].task_id, replay[0].agent) == (started.task_id, "demo-agent")
    completions = [e for e in events if e.kind is AuditKind.TASK_COMPLETE]
    assert [e.detail for e in completions] == [GRANT_REPLAY_REASON]
    revokes = [e for e in events if e.kind is AuditKind.REVOKE]
    assert {e.lease_id for e in revokes} == {lease.lease_id for lease in leases}
    assert all(f"reason={GRANT_REPLAY_REASON}" in e.detail for e in revokes)
    assert events.index(replay[0]) < events.index(completions[0]) < events.index(revokes[0])
    exported = json.dumps([record_to_dict(r) for r in running.broker.store.audit_records(limit=100_000)])
    for plaintext in (started.grant, token, secret["secret"]):
        assert plaintext not in exported

    assert metric(running, "jitsec_broker_grant_replays_total") == 1
    assert metric(running, "jitsec_broker_grant_replay_tasks_ended_total") == 1
    assert metric(running, "jitsec_broker_revoked_total", reason=GRANT_REPLAY_REASON) == 2
    exposition = httpx.get(f"{running.url}/metrics").text
    assert "jitsec_broker_grant_replay_tasks_ended_total 1.0" in exposition


def test_completion_and_further_replays_after_it_revoke_nothing_new(serve) -> None:
    running = serve()
    started, _, _ = start_redeem_issue(running)
    refused(lambda: running.client().redeem(started.task_id, started.grant))
    before = audit(running)

    again = running.client("orchestrator").complete_task(started.task_id)
    assert again == {"task_id": started.task_id, "completed": False, "revoked": 0, "retrying": 0, "failed": 0}
    third = refused(lambda: running.client().redeem(started.task_id, started.grant))
    assert third.status == 401 and third.code == "grant_replayed"

    added = [e.kind for e in audit(running)[len(before) :]]
    assert added == [AuditKind.REPLAY]  # the second replay is audited; nothing is completed or revoked
    assert metric(running, "jitsec_broker_grant_replays_total") == 2
    assert metric(running, "jitsec_broker_grant_replay_tasks_ended_total") == 1
    assert metric(running, "jitsec_broker_revoked_total", reason=GRANT_REPLAY_REASON) == 2


def test_a_replay_after_normal_completion_is_refused_and_audited_only(serve) -> None:
    running = serve()
    started, token, _ = start_redeem_issue(running)
    assert running.client().complete_task(started.task_id, bearer=token)["revoked"] == 2
    error = refused(lambda: running.client().redeem(started.task_id, started.grant))
    assert error.code == "grant_replayed"
    leases = running.broker.store.leases_of_task(started.task_id)
    assert {lease.revoke_reason for lease in leases} == {"task_complete"}
    assert [e.detail for e in audit(running) if e.kind is AuditKind.TASK_COMPLETE] == ["task_complete"]
    assert metric(running, "jitsec_broker_grant_replay_tasks_ended_total") == 0


def test_refuse_keeps_the_old_behaviour(serve, env) -> None:
    running = serve(env.config(broker={"on_grant_replay": "refuse"}))
    assert running.broker.service.on_grant_replay is ReplayAction.REFUSE
    started, token, secret = start_redeem_issue(running)

    error = refused(lambda: running.client().redeem(started.task_id, started.grant))
    assert error.status == 401 and error.code == "grant_replayed"

    assert token_works(running, started.task_id, token)
    assert running.client("resource").introspect(secret["secret"])["active"] is True
    assert running.client("orchestrator").get_task(started.task_id)["completed_at"] is None
    kinds = [e.kind for e in audit(running)]
    assert AuditKind.REPLAY in kinds
    assert AuditKind.TASK_COMPLETE not in kinds and AuditKind.REVOKE not in kinds
    assert metric(running, "jitsec_broker_grant_replays_total") == 1
    assert metric(running, "jitsec_broker_grant_replay_tasks_ended_total") == 0


# configuration ---------------------------------------------------------------------------------------


def test_end_task_is_the_default_and_both_values_parse(env) -> None:
    assert env.config().on_grant_replay is ReplayAction.END_TASK
    for action in ReplayAction:
        assert env.config(broker={"on_grant_replay": action.value}).on_grant_replay is action


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("revoke", r'broker\.on_grant_replay must be one of "end-task", "refuse"'),
        ("END-TASK", r'broker\.on_grant_replay must be one of "end-task", "refuse"'),
        ("", r'broker\.on_grant_replay must be one of "end-task", "refuse"'),
        (True, r"broker\.on_grant_replay must be a str"),
        (1, r"broker\.on_grant_replay must be a str"),
    ],
)
def test_a_bad_value_names_the_key_and_the_allowed_values(env, value: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_config(env.raw_config(broker={"on_grant_replay": value}), source="test")


def test_broker_init_writes_the_key_with_its_default(tmp_path: Path) -> None:
    path = tmp_path / "broker.toml"
    result = CliRunner().invoke(main, ["broker", "init", "--config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    line = next(x for x in path.read_text().splitlines() if x.startswith("on_grant_replay"))
    assert '"end-task"' in line and "#" in line
    assert load_config(path).on_grant_replay is ReplayAction.END_TASK


# the race ---------------------------------------------------------------------------------------------


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_config(request: pytest.FixtureRequest, env) -> Iterator[BrokerConfig]:
    """The default broker config over SQLite, or over a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield env.config()
        return
    url = request.getfixturevalue("as_url")(request.getfixturevalue("scratch_database"))
    yield env.config(broker={"store": url})


def gate_redemptions(store: Store, parties: int) -> None:
    """Hold every ``redeem_grant`` until ``parties`` callers are inside it, so all of them have passed
    the service's "already redeemed?" check and the store alone decides the winner."""
    barrier = threading.Barrier(parties, timeout=20)
    real = store.redeem_grant

    def gated(*args: Any) -> bool:
        barrier.wait()
        return real(*args)

    store.redeem_grant = gated  # type: ignore[method-assign]


def race(running: Any, task_id: str, grant: str, parties: int) -> list[str | BrokerAPIError]:
    def attempt() -> str | BrokerAPIError:
        try:
            return running.client().redeem(task_id, grant)[0]
        except BrokerAPIError as error:
            return error

    with ThreadPoolExecutor(parties) as pool:
        return list(pool.map(lambda _: attempt(), range(parties)))


def test_the_loser_of_a_redemption_race_ends_the_task_with_the_winners_token(serve, store_config) -> None:
    running = serve(store_config)
    parties = 3
    gate_redemptions(running.broker.store, parties)
    started = running.client("orchestrator").start_task("demo-agent", "race", SCOPES)

    outcomes = race(running, started.task_id, started.grant, parties)

    tokens = [o for o in outcomes if isinstance(o, str)]
    losers = [o for o in outcomes if isinstance(o, BrokerAPIError)]
    assert len(tokens) == 1, outcomes
    assert [(e.status, e.code) for e in losers] == [(401, "grant_replayed")] * (parties - 1)
    assert not token_works(running, started.task_id, tokens[0])
    (lease,) = running.broker.store.leases_of_task(started.task_id)
    assert lease.state is LeaseState.REVOKED and lease.revoke_reason == GRANT_REPLAY_REASON
    kinds = [e.kind for e in audit(running)]
    assert kinds.count(AuditKind.REDEEM) == 1 and kinds.count(AuditKind.REPLAY) == parties - 1
    assert kinds.count(AuditKind.TASK_COMPLETE) == 1 and kinds.count(AuditKind.REVOKE) == 1
    assert metric(running, "jitsec_broker_grant_replay_tasks_ended_total") == 1


def test_ungated_races_always_leave_no_live_token(serve) -> None:
    running = serve()
    for _ in range(5):
        started = running.client("orchestrator").start_task("demo-agent", "race", SCOPES)
        outcomes = race(running, started.task_id, started.grant, 4)
        assert sum(isinstance(o, str) for o in outcomes) == 1, outcomes
        leases = running.broker.store.leases_of_task(started.task_id)
        assert [lease.state for lease in leases] == [LeaseState.REVOKED]
