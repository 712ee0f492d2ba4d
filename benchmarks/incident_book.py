"""Incident book cost: a sighting with the durable (SQLite) book against the in-memory book, and the
write-behind flush and start-up reload of many incidents.

    python -m benchmarks.incident_book                     # 1,000,000 sightings, 10,000 incidents, 3 runs
    python -m benchmarks.incident_book --sightings 200000  # shorter

The peer in the same run is the in-memory book: persistence should add nothing per sighting (a
sighting marks the incident dirty; the write happens once per flush). Each figure is the median of
``--runs`` runs.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from jitsec.kernel.records import Confidence, FileOrigin, Finding, Severity
from jitsec.response.incident_store import IncidentStore
from jitsec.response.incidents import IncidentBook


def finding(fingerprint: str) -> Finding:
    return Finding(rule_id="generic-password", origin=FileOrigin("/var/log/app.log"), line=1, column=1,
                   offset=0, preview="Zq8…", fingerprint=fingerprint, severity=Severity.HIGH,
                   confidence=Confidence.HEURISTIC)


def sightings(directory: Path | None, count: int) -> tuple[float, float]:
    """Microseconds per sighting of one secret, and milliseconds for the flush that follows."""
    book = IncidentBook(store=IncidentStore(directory / "one.sqlite") if directory else None)
    one = finding("hmac-sha256:one")
    started = time.perf_counter()
    for n in range(count):  # a token written on every line: each line one sighting
        book.record(replace(one, line=n), f"/var/log/app.log:{n}")
    per_sighting = (time.perf_counter() - started) / count * 1e6
    started = time.perf_counter()
    book.flush()
    flushed = (time.perf_counter() - started) * 1e3
    book.close()
    return per_sighting, flushed


def many(directory: Path, incidents: int) -> tuple[float, float]:
    """Milliseconds to flush ``incidents`` new incidents at once, and to load them at start."""
    book = IncidentBook(store=IncidentStore(directory / "many.sqlite"))
    for n in range(incidents):
        book.record(finding(f"hmac-sha256:{n}"), f"/var/log/app.log:{n}")
    started = time.perf_counter()
    book.flush()
    flushed = (time.perf_counter() - started) * 1e3
    book.close()
    started = time.perf_counter()
    again = IncidentBook(store=IncidentStore(directory / "many.sqlite"))
    loaded = (time.perf_counter() - started) * 1e3
    assert len(again) == incidents, len(again)
    again.close()
    return flushed, loaded


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sightings", type=int, default=1_000_000)
    parser.add_argument("--incidents", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    memory, durable, flush_one, flush_many, reload = [], [], [], [], []
    for _ in range(args.runs):
        with tempfile.TemporaryDirectory(prefix="jitsec-incidents-") as tmp:
            directory = Path(tmp)
            memory.append(sightings(None, args.sightings)[0])
            per_sighting, flushed = sightings(directory, args.sightings)
            durable.append(per_sighting)
            flush_one.append(flushed)
            flushed, loaded = many(directory, args.incidents)
            flush_many.append(flushed)
            reload.append(loaded)
    median = statistics.median
    print(f"{args.sightings:,} sightings of one secret, median of {args.runs} runs:")
    print(f"  in-memory book   {median(memory):6.2f} µs per sighting")
    ratio = median(durable) / median(memory)
    print(f"  durable book     {median(durable):6.2f} µs per sighting (ratio {ratio:.2f}), "
          f"then one flush {median(flush_one):.1f} ms")
    print(f"{args.incidents:,} new incidents: one flush {median(flush_many):.0f} ms, "
          f"reload at start {median(reload):.0f} ms")


if __name__ == "__main__":
    main()
