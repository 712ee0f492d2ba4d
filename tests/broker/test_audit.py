"""The audit chain: every kind of tampering is detected and named, by the library and the command."""

from __future__ import annotations

import json
import sqlite3
import stat

import pytest
import tomli_w
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st
from jitsec.broker.audit import GENESIS, Tamper, chain_hash, legacy_chain_hash, verify
from jitsec.broker.config import load_config
from jitsec.broker.model import AuditEvent, AuditKind, AuditRecord

from jitsec.cli import main
from jitsec.testing import wait_until

KEY = b"k" * 32


def chain(n: int) -> list[AuditRecord]:
    records, prev = [], GENESIS
    for i in range(n):
        event = AuditEvent(kind=AuditKind.ISSUE, at=1_700_000_000 + i, agent="a", lease_id=f"lse_{i}")
        digest = chain_hash(KEY, prev, event, i + 1)
        records.append(AuditRecord(seq=i + 1, event=event, prev_hash=prev, hash=digest))
        prev = digest
    return records


def test_intact_chain_verifies() -> None:
    assert verify(KEY, chain(10)).ok
    assert verify(KEY, []).ok


@settings(max_examples=60)
@given(st.integers(min_value=3, max_value=12), st.data())
def test_each_tampering_is_named_at_the_right_record(n: int, data) -> None:
    records = chain(n)
    i = data.draw(st.integers(min_value=1, max_value=n - 2))
    kind = data.draw(st.sampled_from(list(Tamper)))
    tampered = list(records)
    if kind is Tamper.EDITED:
        event = records[i].event
        tampered[i] = AuditRecord(
            records[i].seq,
            AuditEvent(kind=event.kind, at=event.at, agent="mallory", lease_id=event.lease_id),
            records[i].prev_hash,
            records[i].hash,
        )
        expected = records[i].seq
    elif kind is Tamper.DELETED:
        del tampered[i]
        expected = records[i + 1].seq
    elif kind is Tamper.INSERTED:
        fake_event = AuditEvent(kind=AuditKind.REVOKE, at=0, agent="mallory")
        fake = AuditRecord(
            records[i].seq,
            fake_event,
            records[i - 1].hash,
            chain_hash(b"wrong key" * 4, records[i - 1].hash, fake_event, records[i].seq),
        )
        tampered.insert(i, fake)
        expected = fake.seq
    else:
        tampered[i], tampered[i + 1] = tampered[i + 1], tampered[i]
        expected = tampered[i].seq
    result = verify(KEY, tampered)
    assert not result.ok
    assert result.problems[0].kind is kind and result.problems[0].seq == expected


@pytest.fixture
def configured(env, serve):
    """A served broker with some history, its config on disk, then stopped."""
    raw = env.raw_config()
    path = env.tmp / "broker.toml"
    path.write_text(tomli_w.dumps(raw))
    running = serve(config=env.config())
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    with running.client().task(started.task_id, started.grant, handle_sigterm=False) as task:
        for _ in range(3):
            task.secret("token", ["reports:read"])
    running.broker.close()
    return path, env.tmp / "broker.db"


def run(*args: str):
    return CliRunner().invoke(main, list(args))


TAMPERING = {
    "record seq 4 was edited": ["UPDATE audit SET agent = 'someone-else' WHERE seq = 4"],
    "deleted before seq 6": ["DELETE FROM audit WHERE seq = 5"],
    "record seq 5 was inserted": [
        "UPDATE audit SET seq = seq + 1000 WHERE seq >= 5",
        "UPDATE audit SET seq = seq - 999 WHERE seq >= 1000",
        "INSERT INTO audit SELECT 5, at, kind, principal, agent, task_id, lease_id, engine, scopes, "
        "resource, 'forged', hash, hash FROM audit WHERE seq = 4",
    ],
    "record seq 2 is out of order": [
        "UPDATE audit SET seq = 100 WHERE seq = 2",
        "UPDATE audit SET seq = 2 WHERE seq = 3",
        "UPDATE audit SET seq = 3 WHERE seq = 100",
    ],
}


@pytest.mark.parametrize("message", list(TAMPERING))
def test_cli_verify_names_the_tampered_record(configured, message: str) -> None:
    path, db_path = configured
    ok = run("audit", "verify", "--config", str(path))
    assert ok.exit_code == 0 and "intact" in ok.output
    db = sqlite3.connect(db_path)
    for statement in TAMPERING[message]:
        db.execute(statement)
    db.commit()
    db.close()
    result = run("audit", "verify", "--config", str(path))
    assert result.exit_code == 1
    assert message in result.output.splitlines()[0]


def test_cli_export_writes_json_lines(configured) -> None:
    path, _ = configured
    result = run("audit", "export", "--config", str(path))
    lines = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert [line["seq"] for line in lines] == list(range(1, len(lines) + 1))
    assert lines[0]["kind"] == "task_start" and {"prev_hash", "hash", "agent", "scopes"} <= set(lines[0])
    assert any(line["kind"] == "issue" for line in lines)
    target = path.parent / "export.jsonl"
    target.write_text("old\n")
    target.chmod(0o644)
    written = run("audit", "export", "--config", str(path), "-o", str(target))
    assert written.exit_code == 0 and stat.S_IMODE(target.stat().st_mode) == 0o600
    assert [json.loads(line)["seq"] for line in target.read_text().splitlines()] == [x["seq"] for x in lines]


# anchoring and lease cross-checks -------------------------------------------------------------------


@pytest.fixture
def anchored(env, serve):
    """A served broker whose reaper writes checkpoints to an anchor file; some history, then stopped."""
    anchor = env.tmp / "anchor.jsonl"
    raw = env.raw_config(audit={"anchor": str(anchor), "anchor_seconds": 1})
    path = env.tmp / "broker.toml"
    path.write_text(tomli_w.dumps(raw))
    running = serve(config=load_config(path))
    started = running.client("orchestrator").start_task("demo-agent", "t", ["reports:read"])
    with running.client().task(started.task_id, started.grant, handle_sigterm=False) as task:
        for _ in range(3):
            task.secret("token", ["reports:read"])
    head = running.broker.store.audit_head()
    assert head is not None
    assert wait_until(lambda: anchor.exists() and f'"seq":{head[0]},' in anchor.read_text(), 15)
    running.broker.close()
    return path, env.tmp / "broker.db", anchor


def tamper(db_path, *statements: str) -> None:
    db = sqlite3.connect(db_path)
    for statement in statements:
        db.execute(statement)
    db.commit()
    db.close()


def test_an_anchored_chain_verifies_intact_and_holds_no_secret(anchored) -> None:
    path, _, anchor = anchored
    result = run("audit", "verify", "--config", str(path))
    assert result.exit_code == 0 and "checkpoints hold" in result.output, result.output
    lines = anchor.read_text().splitlines()
    assert lines and all(set(json.loads(line)) == {"seq", "hash", "at", "mac"} for line in lines)
    assert stat.S_IMODE(anchor.stat().st_mode) == 0o600


@pytest.mark.parametrize(("statements", "message"), [
    (["DELETE FROM audit WHERE seq >= (SELECT MAX(seq) - 1 FROM audit)"], "records deleted from the tail"),
    (["DELETE FROM audit"], "the whole chain is gone"),
])
def test_the_anchor_shows_a_cut_tail_and_a_deleted_chain(anchored, statements, message) -> None:
    path, db_path, _ = anchored
    tamper(db_path, *statements)
    result = run("audit", "verify", "--config", str(path))
    assert result.exit_code == 1 and message in result.output, result.output


def test_a_forged_checkpoint_is_named(anchored) -> None:
    path, _, anchor = anchored
    lines = anchor.read_text().splitlines()
    forged = json.loads(lines[-1]) | {"seq": 1}
    anchor.write_text("\n".join([*lines, json.dumps(forged)]) + "\n")
    result = run("audit", "verify", "--config", str(path))
    assert result.exit_code == 1 and "bad MAC" in result.output


def test_a_revoked_lease_set_back_to_active_is_named(configured) -> None:
    path, db_path = configured
    db = sqlite3.connect(db_path)
    query = "SELECT MIN(lease_id) FROM leases WHERE engine = 'token' AND state = 'revoked'"
    [lease_id] = db.execute(query).fetchone()
    db.execute("UPDATE leases SET state = 'active', revoked_at = NULL WHERE lease_id = ?", (lease_id,))
    db.commit()
    db.close()
    result = run("audit", "verify", "--config", str(path))
    assert result.exit_code == 1 and f"lease {lease_id} was revoked" in result.output, result.output


# seq under the MAC (version 2), and chains written before it (version 1) --------------------------
def legacy_chain(n: int) -> list[AuditRecord]:
    records, prev = [], GENESIS
    for i in range(n):
        event = AuditEvent(kind=AuditKind.ISSUE, at=1_600_000_000 + i, agent="old", lease_id=f"lse_{i}")
        digest = legacy_chain_hash(KEY, prev, event)
        records.append(AuditRecord(seq=i + 1, event=event, prev_hash=prev, hash=digest))
        prev = digest
    return records


def test_changing_only_a_records_seq_breaks_verification() -> None:
    records = chain(6)
    renumbered = [AuditRecord(r.seq + 100, r.event, r.prev_hash, r.hash) if r.seq >= 4 else r
                  for r in records]
    result = verify(KEY, renumbered)
    assert not result.ok and result.problems[0].kind is Tamper.EDITED and result.problems[0].seq == 104
    last = records[-1]
    bumped = [*records[:-1], AuditRecord(last.seq + 1, last.event, last.prev_hash, last.hash)]
    assert [p.seq for p in verify(KEY, bumped).problems] == [last.seq + 1]


def test_a_chain_written_before_seq_was_mac_ed_still_verifies_and_continues() -> None:
    old = legacy_chain(4)
    assert verify(KEY, old).ok
    head, rows = old[-1].hash, list(old)
    for seq in range(5, 8):  # a newer broker appends version-2 records after it
        event = AuditEvent(kind=AuditKind.REVOKE, at=1_700_000_000 + seq, agent="new")
        rows.append(AuditRecord(seq, event, head, chain_hash(KEY, head, event, seq)))
        head = rows[-1].hash
    assert verify(KEY, rows).ok
    event = AuditEvent(kind=AuditKind.REVOKE, at=1_800_000_000, agent="downgraded")
    downgraded = AuditRecord(8, event, head, legacy_chain_hash(KEY, head, event))
    result = verify(KEY, [*rows, downgraded])  # a version-1 record after version 2 is not accepted
    assert [(p.kind, p.seq) for p in result.problems] == [(Tamper.EDITED, 8)]


def test_cli_verify_names_a_renumbered_record(configured) -> None:
    path, db_path = configured
    db = sqlite3.connect(db_path)
    last = db.execute("SELECT MAX(seq) FROM audit").fetchone()[0]
    db.execute("UPDATE audit SET seq = seq + 10 WHERE seq = ?", (last,))
    db.commit()
    db.close()
    result = run("audit", "verify", "--config", str(path))
    assert result.exit_code == 1 and f"record seq {last + 10} was edited" in result.output


def test_a_store_written_by_an_older_broker_goes_on_verifying(tmp_path) -> None:
    from jitsec.broker.store.registry import open_store  # noqa: PLC0415

    db_path = tmp_path / "old.db"
    store = open_store(f"sqlite://{db_path}", KEY)
    store.migrate()
    store.append_audit([AuditEvent(kind=AuditKind.ISSUE, at=1_600_000_000 + i, agent="old")
                        for i in range(3)])
    old = store.audit_records()
    db = sqlite3.connect(db_path)  # as an older broker wrote them: version-1 hashes, no seq under the MAC
    prev = GENESIS
    for record in old:
        digest = legacy_chain_hash(KEY, prev, record.event)
        db.execute("UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, digest, record.seq))
        prev = digest
    db.commit()
    db.close()
    store.append_audit([AuditEvent(kind=AuditKind.REVOKE, at=1_700_000_000, agent="new")])
    records = store.audit_records()
    store.close()
    assert [r.seq for r in records] == [1, 2, 3, 4] and records[3].prev_hash == prev
    assert records[3].hash == chain_hash(KEY, prev, records[3].event, 4)
    assert verify(KEY, records).ok
