"""The incident book survives a restart: the same incident, no alert for an old leak, no secret on disk."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

from jitsec.cli import main
from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.kernel.records import (
    BrokerStatus,
    Confidence,
    FileOrigin,
    Finding,
    ResponseAction,
    Severity,
)
from jitsec.response.incident_store import FILE_NAME, IncidentStore, IncidentStoreError
from jitsec.response.incidents import ALERT_ONLY, IncidentBook, IncidentPolicy, Resolution
from jitsec.response.responder import Responder, ResponderSettings
from jitsec.testing import CollectingSink, ManualClock


def finding(fingerprint: str = "hmac-sha256:aa", line: int = 1) -> Finding:
    return Finding(
        rule_id="broker-engine-token", origin=FileOrigin("/log"), line=line, column=1, offset=0,
        preview="jit_abcd…(50 chars)", fingerprint=fingerprint, severity=Severity.CRITICAL,
        confidence=Confidence.STRUCTURAL, credential_sha256="00" * 32,
    )


REVOKED = Resolution(ResponseAction.REVOKED, BrokerStatus.REVOKED, lease_id="lse_1", agent="a", task="t",
                     scopes=("db:read",), revoked_at=1_700_000_000.1, latency_ms=40.0)
DEAD = Resolution(ResponseAction.ALREADY_DEAD, BrokerStatus.DEAD, lease_id="lse_1")
PENDING = Resolution(ResponseAction.PENDING)
POLICY = IncidentPolicy(resend_interval=60)


def book(path: Path, clock: ManualClock, policy: IncidentPolicy = POLICY) -> IncidentBook:
    return IncidentBook(policy, clock=clock, store=IncidentStore(path / FILE_NAME, clock=clock))


# -- the book across a restart ---------------------------------------------------------------------


def test_a_restart_keeps_id_count_first_seen_locations_and_resolution(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    first = book(tmp_path, clock)
    opened = first.record(finding(), "/log:1", REVOKED)
    assert opened is not None
    for n in range(2, 6):
        clock.now += 1
        first.record(finding(), f"/log:{n}", DEAD)
    before = first.get("hmac-sha256:aa")
    first.close()

    clock.now += 5
    second = book(tmp_path, clock)
    assert second.get("hmac-sha256:aa") == before
    assert second.record(finding(), "/log:9", DEAD) is None  # our own revocation echoing back: no alert
    after = second.get("hmac-sha256:aa")
    assert after is not None and before is not None
    assert after.incident_id == opened.incident_id
    assert after.occurrences == 6 and after.first_seen == opened.first_seen
    assert after.locations == ("/log:1", "/log:2", "/log:3", "/log:4", "/log:5", "/log:9")
    assert (after.action, after.lease_id, after.latency_ms) == (ResponseAction.REVOKED, "lse_1", 40.0)
    assert after.scopes == ("db:read",)


def test_a_restart_alone_never_re_alerts_and_the_resend_clock_continues(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    first = book(tmp_path, clock)
    first.record(finding(), "/log:1", REVOKED)
    first.close()
    clock.now += 30
    second = book(tmp_path, clock)
    assert second.due() == [] and second.pending() == []
    assert second.record(finding(), "/log:2", DEAD) is None  # 30 s since the last send: deferred
    assert second.due() == []
    clock.now += 31
    [update] = second.due()
    assert (update.version, update.occurrences) == (2, 2)


def test_a_changed_resolution_after_a_restart_is_sent(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    first = book(tmp_path, clock)
    pending = first.record(finding(), "/log:1", PENDING)
    assert pending is not None
    first.close()
    second = book(tmp_path, clock)
    update = second.resolve(finding(), "/log:1", REVOKED)
    assert update is not None
    assert update.incident_id == pending.incident_id and update.version == pending.version + 1
    assert update.action is ResponseAction.REVOKED and update.occurrences == 1


def test_a_deferred_update_saved_by_a_tick_is_sent_after_a_crash(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    first = book(tmp_path, clock)
    first.record(finding(), "/log:1", ALERT_ONLY)
    first.record(finding(), "/log:2", ALERT_ONLY)  # deferred
    first.flush()  # the tick; then the process dies (no close, no final pending())
    clock.now += 61
    second = book(tmp_path, clock)
    [update] = second.due()
    assert update.occurrences == 2 and update.locations == ("/log:1", "/log:2")


def test_many_sightings_cost_one_write_per_flush(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    held = book(tmp_path, clock)
    for n in range(20_000):
        held.record(finding(f"hmac-sha256:{n % 3}"), f"/log:{n}", ALERT_ONLY)
    assert held.store is not None and held.store.stats().saves == 0
    assert held.flush() == 3
    assert held.flush() == 0  # nothing changed since
    assert held.store.stats().saves == 1
    held.close()
    assert {i.occurrences for i in book(tmp_path, clock).snapshot()} == {6667, 6666}


def test_eviction_forgets_the_least_recently_seen_in_memory_and_on_disk(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    policy = IncidentPolicy(resend_interval=60, max_incidents=2)
    first = book(tmp_path, clock, policy)
    for name in ("a", "b"):
        clock.now += 1
        first.record(finding(f"hmac-sha256:{name}"), "/log:1")
    clock.now += 1
    first.record(finding("hmac-sha256:a"), "/log:2")  # a is now the most recent
    clock.now += 1
    first.record(finding("hmac-sha256:c"), "/log:3")  # evicts b
    first.close()
    store = IncidentStore(tmp_path / FILE_NAME)
    assert store.count() == 2
    store.close()
    second = book(tmp_path, clock, policy)
    assert {i.fingerprint for i in second.snapshot()} == {"hmac-sha256:a", "hmac-sha256:c"}
    clock.now += 1
    second.record(finding("hmac-sha256:d"), "/log:4")  # evicts a (seen before c), order survived the restart
    second.close()
    third = book(tmp_path, clock, IncidentPolicy(max_incidents=1))  # a smaller bound trims the file
    assert [i.fingerprint for i in third.snapshot()] == ["hmac-sha256:d"]
    assert third.store is not None and third.store.count() == 1


def test_an_evicted_then_reopened_secret_is_one_fresh_row(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    held = book(tmp_path, clock, IncidentPolicy(max_incidents=1))
    old = held.record(finding("hmac-sha256:a"), "/log:1")
    held.record(finding("hmac-sha256:b"), "/log:2")
    new = held.record(finding("hmac-sha256:a"), "/log:3")  # evicts b, reopens a in the same flush window
    held.close()
    assert old is not None and new is not None and new.incident_id != old.incident_id
    [saved] = book(tmp_path, clock).snapshot()
    assert saved.incident_id == new.incident_id


# -- damaged or unusable files ---------------------------------------------------------------------------


def test_a_corrupt_database_is_moved_aside_and_a_fresh_book_starts(tmp_path: Path,
                                                                    caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / FILE_NAME
    path.write_bytes(b"this is not a database\n" * 200)
    store = IncidentStore(path)
    stats = store.stats()
    assert stats.quarantined is not None and stats.quarantined.read_bytes().startswith(b"this is not")
    assert "unreadable" in caplog.text and str(stats.quarantined) in caplog.text
    held = IncidentBook(POLICY, store=store)
    assert len(held) == 0
    assert held.record(finding(), "/log:1") is not None
    held.close()
    assert IncidentStore(path).count() == 1


def test_a_database_of_another_schema_is_moved_aside(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    IncidentStore(path).close()
    with sqlite3.connect(path) as db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    db.close()
    assert IncidentStore(path).stats().quarantined is not None


def test_an_unreadable_row_is_dropped_and_counted(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    first = book(tmp_path, clock)
    first.record(finding("hmac-sha256:good"), "/log:1")
    first.close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        db.execute("INSERT INTO incidents VALUES ('hmac-sha256:bad', '{\"schema\": 1}', 0, 0, 0)")
    db.close()
    second = book(tmp_path, clock)
    assert [i.fingerprint for i in second.snapshot()] == ["hmac-sha256:good"]
    assert second.store is not None and second.store.stats().skipped == 1 and second.store.count() == 1


def test_a_path_that_cannot_be_opened_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).mkdir()  # a directory in the way (permissions do not stop root)
    with pytest.raises(IncidentStoreError, match=FILE_NAME) as raised:
        IncidentStore(tmp_path / FILE_NAME)
    assert isinstance(raised.value, OSError)  # scanning commands report OSErrors at start


def test_a_failed_save_keeps_the_changes_and_never_raises(tmp_path: Path,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    clock = ManualClock(1_700_000_000.0)
    store = IncidentStore(tmp_path / FILE_NAME)
    held = IncidentBook(POLICY, clock=clock, store=store)
    held.record(finding(), "/log:1")
    store.close()  # the database goes away under the book
    assert held.flush() == 0
    assert store.stats().errors == 1 and "kept in memory" in caplog.text
    assert held.get("hmac-sha256:aa") is not None


# -- the responder ---------------------------------------------------------------------------------


FAST = ResponderSettings(incidents=POLICY, tick_seconds=0.01)


def test_a_restarted_responder_continues_the_incident_and_sends_nothing_new(tmp_path: Path) -> None:
    sink = CollectingSink()
    first = Responder([sink], broker=None, state_dir=tmp_path, settings=FAST)
    first.respond(None, [finding()])
    first.close()
    [opened] = sink.incidents

    quiet = CollectingSink()
    Responder([quiet], broker=None, state_dir=tmp_path, settings=FAST).close()
    assert quiet.incidents == []  # a restart alone: no alert

    later = CollectingSink()
    second = Responder([later], broker=None, state_dir=tmp_path, settings=FAST)
    second.respond(None, [finding(line=7)])
    assert later.incidents == []  # re-read within the re-send interval: counted, not alerted
    second.close()  # the final flush sends the deferred count, as the same incident
    assert [(i.incident_id, i.occurrences) for i in later.incidents] == [(opened.incident_id, 2)]


def test_without_persistence_the_responder_writes_no_incident_file(tmp_path: Path) -> None:
    settings = ResponderSettings(persist_incidents=False)
    Responder([], broker=None, state_dir=tmp_path, settings=settings).close()
    assert not (tmp_path / FILE_NAME).exists()


def test_the_responder_threads_and_the_store_agree(tmp_path: Path) -> None:
    sink = CollectingSink()
    responder = Responder([sink], broker=None, state_dir=tmp_path, settings=FAST)
    fingerprints = [f"hmac-sha256:{n}" for n in range(8)]

    def sightings(worker: int) -> None:
        for n in range(300):
            responder.respond(None, [finding(fingerprints[(worker + n) % 8], line=n)])
            if n % 50 == 0:
                responder.incidents.flush()  # concurrent with the ticker's flushes

    workers = [threading.Thread(target=sightings, args=(w,)) for w in range(4)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    responder.close()
    in_memory = {i.fingerprint: i for i in responder.incidents.snapshot()}
    saved = {i.fingerprint: i for i in IncidentBook(store=IncidentStore(tmp_path / FILE_NAME)).snapshot()}
    assert saved == in_memory
    assert sum(i.occurrences for i in saved.values()) == 4 * 300
    assert len({i.incident_id for i in sink.incidents}) == 8


def test_no_secret_and_no_unkeyed_hash_of_one_reaches_the_state_dir(tmp_path: Path) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    secrets_planted = [token, "sk_live_4eC39HqLyjWDarjtT1zdp7dc", "Zq8#vLp2!xRt9Wm4sKj7",
                       "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzQ8uLp2kT9"]
    data = (f"token={secrets_planted[0]}\nSTRIPE={secrets_planted[1]}\npassword = \"{secrets_planted[2]}\"\n"
            f"aws_secret_access_key = {secrets_planted[3]}\n").encode()
    scanner = Scanner(load_ruleset(), Fingerprinter(b"k" * 32), engine="python")
    found = scanner.scan_bytes(data, FileOrigin(str(tmp_path / "app.log")))
    assert len(found) == len(secrets_planted)
    responder = Responder([], broker=None, state_dir=tmp_path / "state", settings=FAST)
    responder.respond(None, found)
    responder.respond(None, found)
    responder.incidents.flush()
    on_disk = b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
    responder.close()
    on_disk += b"".join(p.read_bytes() for p in (tmp_path / "state").rglob("*") if p.is_file())
    assert len(IncidentBook(store=IncidentStore(tmp_path / "state" / FILE_NAME))) == len(secrets_planted)
    for secret in secrets_planted:
        raw = secret.encode()
        assert raw not in on_disk
        assert hashlib.sha256(raw).hexdigest().encode() not in on_disk
        assert hashlib.sha256(raw).hexdigest().upper().encode() not in on_disk


# -- end to end: a real `jitsec watch` run twice over the same file ----------------------------------------


def watch_once(tmp_path: Path, log: Path, alerts: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "JITSEC_HOME": str(tmp_path / "home"), "JITSEC_STATE_DIR": str(tmp_path / "state")}
    for name in ("JITSEC_BROKER_URL", "JITSEC_BROKER_KEY", "JITSEC_FINGERPRINT_KEY"):
        env.pop(name, None)
    return subprocess.run(
        ["jitsec", "watch", str(log), "--exit-when-idle", "0.3", "--alert", f"jsonl:{alerts}", *extra],
        env=env, capture_output=True, text=True, timeout=60, check=False,
    )


def alert_lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_jitsec_watch_run_twice_over_one_log_keeps_its_incident_ids(tmp_path: Path) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    log = tmp_path / "app.log"
    log.write_text(f"boot\nagent token={token}\nagent retry token={token}\n", encoding="utf-8")
    alerts = tmp_path / "alerts.jsonl"

    first = watch_once(tmp_path, log, alerts)
    assert first.returncode == 1, first.stderr
    first_run = alert_lines(alerts)
    assert first_run and {a["occurrences"] for a in first_run} <= {1, 2}
    ids = {a["incident_id"] for a in first_run}
    assert len(ids) == 1
    assert {a["rules_digest"] for a in first_run} == {load_ruleset().digest}  # stamped, as scan stamps it

    with log.open("a", encoding="utf-8") as out:
        out.write(f"agent later token={token}\n")
    second = watch_once(tmp_path, log, alerts)  # no checkpoint: the whole file is read again
    assert second.returncode == 1, second.stderr
    second_run = alert_lines(alerts)[len(first_run):]
    assert second_run and {a["incident_id"] for a in second_run} <= ids
    assert second_run[-1]["occurrences"] == 3 and second_run[-1]["first_seen"] == first_run[0]["first_seen"]
    assert token not in (tmp_path / "state" / FILE_NAME).read_text(encoding="latin-1")


def saved_rows(path: Path) -> int:
    if not path.exists():
        return 0
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
        try:
            count = int(db.execute("SELECT COUNT(*) FROM incidents").fetchone()[0])
        except sqlite3.OperationalError:  # the schema is not created yet
            count = 0
    db.close()
    return count


def test_jitsec_watch_killed_after_alerting_keeps_the_incident(tmp_path: Path) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    log = tmp_path / "app.log"
    log.write_text(f"agent token={token}\n", encoding="utf-8")
    alerts = tmp_path / "alerts.jsonl"
    env = {**os.environ, "JITSEC_HOME": str(tmp_path / "home"), "JITSEC_STATE_DIR": str(tmp_path / "state")}
    env.pop("JITSEC_BROKER_URL", None)
    process = subprocess.Popen(["jitsec", "watch", str(log), "--alert", f"jsonl:{alerts}"], env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (alerts.exists() and alert_lines(alerts)):
            time.sleep(0.02)
        while time.monotonic() < deadline and saved_rows(tmp_path / "state" / FILE_NAME) == 0:
            time.sleep(0.02)  # saved after the alerted chunk (at the latest on the next tick)
    finally:
        process.kill()  # SIGKILL: no shutdown flush
        process.wait(timeout=10)
    [opened] = alert_lines(alerts)
    with log.open("a", encoding="utf-8") as out:
        out.write(f"agent again token={token}\n")
    watch_once(tmp_path, log, alerts)
    again = alert_lines(alerts)[1:]
    assert again and {a["incident_id"] for a in again} == {opened["incident_id"]}
    assert again[-1]["occurrences"] == 2


def test_jitsec_watch_restarted_at_its_checkpoint_sends_no_alert(tmp_path: Path) -> None:
    log = tmp_path / "app.log"
    log.write_text(f"agent token={mint(CredentialKind.ENGINE_TOKEN)}\n", encoding="utf-8")
    alerts = tmp_path / "alerts.jsonl"
    checkpoint = ("--checkpoint-dir", str(tmp_path / "ck"))
    assert watch_once(tmp_path, log, alerts, *checkpoint).returncode == 1
    sent = alert_lines(alerts)
    watch_once(tmp_path, log, alerts, *checkpoint)
    assert alert_lines(alerts) == sent


def test_jitsec_scan_twice_over_one_tree_reports_one_incident_once(tmp_path: Path) -> None:
    tree = tmp_path / "repo"
    tree.mkdir()
    (tree / "settings.env").write_text(f"API_TOKEN={mint(CredentialKind.ENGINE_TOKEN)}\n", encoding="utf-8")
    alerts = tmp_path / "alerts.jsonl"
    env = {"JITSEC_HOME": str(tmp_path / "home"), "JITSEC_STATE_DIR": str(tmp_path / "state"),
           "JITSEC_BROKER_URL": "", "JITSEC_FINGERPRINT_KEY": ""}
    arguments = ["scan", str(tree), "--engine", "python", "--alert", f"jsonl:{alerts}"]
    for _ in range(2):
        result = CliRunner().invoke(main, arguments, env=env, catch_exceptions=False)
        assert result.exit_code == 1, result.output
    sent = alert_lines(alerts)
    assert len(sent) == 1  # the unchanged line scanned again is the same sighting: nothing new
    assert sent[-1]["occurrences"] == 1


def test_jitsec_scan_with_an_unusable_incident_store_says_so(tmp_path: Path) -> None:
    (tmp_path / "state" / FILE_NAME).mkdir(parents=True)
    (tmp_path / "a.env").write_text("nothing here\n", encoding="utf-8")
    env = {"JITSEC_HOME": str(tmp_path / "home"), "JITSEC_STATE_DIR": str(tmp_path / "state")}
    result = CliRunner().invoke(main, ["scan", str(tmp_path / "a.env"), "--alert", "console"], env=env)
    assert result.exit_code == 2 and "cannot open the incident store" in result.output


def test_the_benchmark_runs_and_reports_both_books() -> None:
    repo = Path(__file__).resolve().parents[2]
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.incident_book", "--sightings", "2000", "--incidents", "50",
         "--runs", "1"],
        cwd=repo, capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    assert "in-memory book" in result.stdout and "durable book" in result.stdout
    assert "50 new incidents" in result.stdout


# -- a re-read line is one sighting ------------------------------------------------------------------


def test_a_line_read_again_after_a_restart_is_not_counted_or_resent(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    first = book(tmp_path, clock)
    first.record(finding(line=1), "/log:1", ALERT_ONLY)
    first.record(finding(line=2), "/log:2", ALERT_ONLY)
    assert len(first.pending()) == 1  # the responder's final flush at shutdown
    first.close()
    clock.now += 120  # past the re-send interval: a counted sighting would be sent at once
    second = book(tmp_path, clock)
    assert second.record(finding(line=1), "/log:1", ALERT_ONLY) is None
    assert second.record(finding(line=2), "/log:2", ALERT_ONLY) is None
    assert second.due() == [] and second.pending() == []
    held = second.get("hmac-sha256:aa")
    assert held is not None and held.occurrences == 2 and held.version == 2
    fresh = second.record(finding(line=3), "/log:3", ALERT_ONLY)  # a new line still counts
    assert fresh is not None and fresh.occurrences == 3


def test_a_re_read_line_with_a_new_outcome_updates_without_counting(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    first = book(tmp_path, clock)
    first.record(finding(), "/log:1", PENDING)
    first.close()
    second = book(tmp_path, clock)
    update = second.record(finding(), "/log:1", REVOKED)
    assert update is not None and update.action is ResponseAction.REVOKED and update.occurrences == 1


def test_the_same_secret_on_another_line_or_column_is_another_sighting(tmp_path: Path) -> None:
    held = book(tmp_path, ManualClock(1_700_000_000.0))
    held.record(finding(), "/log:1", ALERT_ONLY)
    held.record(replace(finding(), column=40), "/log:1", ALERT_ONLY)
    held.record(finding(), "/other:1", ALERT_ONLY)
    held.record(finding(), "/log:1", ALERT_ONLY)  # the first one, read again
    counted = held.get("hmac-sha256:aa")
    assert counted is not None and counted.occurrences == 3


def test_remembered_sightings_are_bounded_in_memory_and_on_disk(tmp_path: Path) -> None:
    clock = ManualClock(1_700_000_000.0)
    policy = IncidentPolicy(resend_interval=60, max_sightings=50)
    held = book(tmp_path, clock, policy)
    for n in range(200):
        held.record(finding(line=n), f"/log:{n}", ALERT_ONLY)
    held.close()
    with sqlite3.connect(tmp_path / FILE_NAME) as db:
        assert db.execute("SELECT COUNT(*) FROM sightings").fetchone()[0] == 50
    again = book(tmp_path, clock, policy)
    again.record(finding(line=199), "/log:199", ALERT_ONLY)  # remembered: not counted
    again.record(finding(line=0), "/log:0", ALERT_ONLY)  # forgotten long ago: counted again
    counted = again.get("hmac-sha256:aa")
    assert counted is not None and counted.occurrences == 201


def test_jitsec_watch_restarted_without_a_checkpoint_counts_no_line_twice(tmp_path: Path) -> None:
    token = mint(CredentialKind.ENGINE_TOKEN)
    log = tmp_path / "app.log"
    log.write_text(f"boot\nagent token={token}\nagent retry token={token}\n", encoding="utf-8")
    alerts = tmp_path / "alerts.jsonl"
    assert watch_once(tmp_path, log, alerts).returncode == 1
    first_run = alert_lines(alerts)
    assert first_run[-1]["occurrences"] == 2

    assert watch_once(tmp_path, log, alerts).returncode == 1  # the whole file is read again
    assert alert_lines(alerts) == first_run  # nothing new: no new version, no doubled count

    with log.open("a", encoding="utf-8") as out:
        out.write(f"agent third token={token}\n")
    watch_once(tmp_path, log, alerts)
    third_run = alert_lines(alerts)[len(first_run):]
    assert third_run and third_run[-1]["occurrences"] == 3
    assert {a["incident_id"] for a in third_run} == {first_run[0]["incident_id"]}
