"""Test 8.7, leak detection (requirement 4.8): a live credential written where logs go is detected,
revoked and alerted within a threshold; the measured latency is reported.

The suite plants a log line carrying a live token into the leak target (a file the deployment's
watcher tails, or a Kafka topic it consumes). Without ``--leak-target`` (CI, self-tests) it creates a
file and starts ``jitsec watch`` on it itself, first waiting until the watcher has reported a canary
(a well-formed credential no broker issued). Latency: from the line handed to the target to
introspection answering inactive.
"""

from __future__ import annotations

import time

from jitsec.conformance.context import Context, Recorder
from jitsec.conformance.leakwatch import Watcher, leak_line, plant
from jitsec.conformance.resources import token_probe, wait_for
from jitsec.conformance.settings import LeakTarget
from jitsec.kernel.credential_format import CredentialKind, mint, sha256_fingerprint

TEST_ID = "8.7"
TITLE = "Secret leak detection"
REQUIREMENT = "4.8"
READY_TIMEOUT = 60.0
CANARY_INTERVAL = 2.0


def run(ctx: Context, rec: Recorder) -> None:
    settings = ctx.settings
    target = settings.leak_target or LeakTarget(
        "file", path=ctx.work_dir / f"leak-{ctx.run_id}" / "agent.log"
    )
    watcher = None
    try:
        if settings.runs_own_watcher:
            watcher = _start_watcher(ctx, rec, target)
            if watcher is None:
                return
        else:
            rec.note(f"the deployment's watcher is expected to read {target.describe()}")
        _leak_and_measure(ctx, rec, target, watcher)
    finally:
        if watcher is not None:
            watcher.stop()


def _start_watcher(ctx: Context, rec: Recorder, target: LeakTarget) -> Watcher | None:
    key = ctx.settings.keys.scanner
    if not rec.check(
        "a scanner key to start a watcher with",
        bool(key),
        "" if key else "set $JITSEC_BROKER_KEY (the scanner principal's key) or --keys-file",
    ):
        return None
    if target.kind == "file" and target.path is not None:
        target.path.parent.mkdir(parents=True, exist_ok=True)
        target.path.touch()
    watcher = Watcher(
        target,
        ctx.settings.broker_url,
        key or "",
        ctx.work_dir / f"watch-{ctx.run_id}",
        group=f"jitsec-conformance-{ctx.run_id}",
    )
    canary = mint(CredentialKind.ENGINE_TOKEN)  # well-formed, checksummed, issued by no broker
    ctx.ledger.add(canary)
    started = time.monotonic()
    ready = False
    while not ready and watcher.is_running() and time.monotonic() - started < READY_TIMEOUT:
        plant(target, leak_line(canary))  # again and again: a new consumer group may start at the end
        ready = watcher.wait_seen(sha256_fingerprint(canary), timeout=CANARY_INTERVAL)
    rec.check(
        "the suite's watcher reads the leak target",
        ready,
        f"jitsec watch {target.describe()}",
        measured=time.monotonic() - started,
    )
    if not ready:
        watcher.stop()
        return None
    return watcher


def _leak_and_measure(ctx: Context, rec: Recorder, target: LeakTarget, watcher: Watcher | None) -> None:
    threshold = ctx.settings.leak_threshold_seconds
    started = ctx.start_task(rec, ctx.agent(rec, "leak"), [ctx.READ], ttl_seconds=300, label="8.7")
    task = ctx.enter(ctx.agent_task(started))
    token = ctx.secret(task, "token", [ctx.READ], 300)
    rec.check("the token to leak is live", token_probe(ctx.resource, token.value).works)
    written = plant(target, leak_line(token.value))
    dead_at = wait_for(
        lambda: not token_probe(ctx.resource, token.value).works, timeout=threshold + 1.0, interval=0.01
    )
    latency = None if dead_at is None else time.time() - (time.monotonic() - dead_at) - written
    rec.check(
        "the leaked token is revoked within the threshold",
        latency is not None and latency <= threshold,
        "still live" if latency is None else f"{latency * 1000:.0f} ms from write to inactive",
        measured=latency,
        limit=threshold,
    )
    if latency is not None:
        rec.fact("leak_latency_ms", f"{latency * 1000:.1f}")
    lease = ctx.lease(token.lease_id)
    rec.check(
        "the broker records the revocation as a leak",
        lease["revoke_reason"] == "leak",
        f"state {lease['state']}, reason {lease['revoke_reason']}",
    )
    if watcher is not None:
        alerted = wait_for(lambda: bool(watcher.incidents_of(token.lease_id)), timeout=threshold)
        incidents = watcher.incidents_of(token.lease_id)
        rec.check(
            "an alert names the lease",
            alerted is not None,
            f"{len(incidents)} incident(s), action {incidents[0].get('action') if incidents else '-'}",
        )
    else:
        rec.note("alerts go to the deployment's sinks: the suite checked the broker's leak record instead")
    if ctx.audit is not None:
        leaks = [e for e in ctx.audit.of([started.task_id]) if e.kind == "leak"]
        rec.check("the leak is in the audit", bool(leaks), f"{len(leaks)} leak records")
    task.complete()
    ctx.cleanup([started.task_id])
