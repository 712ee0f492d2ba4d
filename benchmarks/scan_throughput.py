"""Scan throughput and accuracy: ``jitsec scan`` against detect-secrets on the seeded corpus.

Both tools run as whole processes (start-up, rule loading and output included). jitsec scans the whole
corpus (median of several runs); detect-secrets, being ~1,000 times slower, scans a slice made of the
first lines of every corpus file, and jitsec scans that same slice too, so accuracy is also compared on
identical input. Per-process CPU time and peak RSS come from ``os.wait4``. Precision and recall are by
line against the corpus ground truth. Per-rule candidate / confirmed counts come from an in-process scan
of the corpus with the same rules (``Scanner.stats``).

    python -m benchmarks.scan_throughput            # short: 20 MB corpus, 1 MB detect-secrets slice
    python -m benchmarks.scan_throughput --full     # 200 MB corpus, 5 MB slice
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from benchmarks.corpus import TRUTH, CorpusInfo, reuse_or_generate

Line = tuple[str, int]  # (file name, 1-based line)


@dataclass(frozen=True, slots=True)
class Run:
    wall: float
    cpu: float
    max_rss_mb: float
    returncode: int


@dataclass(frozen=True, slots=True)
class Accuracy:
    tp: int
    fp: int
    fn: int

    @property
    def precision(self) -> float:
        return self.tp / (self.tp + self.fp) if self.tp + self.fp else 1.0

    @property
    def recall(self) -> float:
        return self.tp / (self.tp + self.fn) if self.tp + self.fn else 1.0


def run_process(argv: list[str], stdout: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> Run:
    """Run one process to completion; wall time, user+sys CPU and peak RSS of that process alone.
    (detect-secrets runs inside the slice directory: in a git work tree it skips untracked paths.)"""
    with stdout.open("wb") as out:
        start = time.perf_counter()
        process = subprocess.Popen(argv, stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - start
    process.returncode = os.waitstatus_to_exitcode(status)
    return Run(wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024, process.returncode)


def jitsec_argv(files: list[Path], output: Path) -> list[str]:
    exe = shutil.which("jitsec")
    base = [exe] if exe else [sys.executable, "-c", "from jitsec.cli import main; main()"]
    return [*base, "scan", "--format", "jsonl", "--no-progress", "--output", str(output), *map(str, files)]


def jitsec_lines(output: Path) -> set[Line]:
    lines: set[Line] = set()
    for row in output.read_text(encoding="utf-8").splitlines():
        finding = json.loads(row)
        lines.add((Path(finding["path"]).name, int(finding["line"])))
    return lines


def detect_secrets_lines(output: Path) -> set[Line]:
    results = json.loads(output.read_text(encoding="utf-8"))["results"]
    return {(Path(name).name, int(item["line_number"])) for name, items in results.items() for item in items}


def load_truth(corpus: Path, limits: dict[str, int] | None = None) -> set[Line]:
    """Lines holding a planted secret (within ``limits``: the last line per file of a slice)."""
    truth: set[Line] = set()
    for row in (corpus / TRUTH).read_text(encoding="utf-8").splitlines():
        item = json.loads(row)
        if item["positive"] and (limits is None or item["line"] <= limits.get(item["path"], 0)):
            truth.add((item["path"], int(item["line"])))
    return truth


def score(flagged: set[Line], truth: set[Line]) -> Accuracy:
    return Accuracy(tp=len(flagged & truth), fp=len(flagged - truth), fn=len(truth - flagged))


def make_slice(info: CorpusInfo, directory: Path, size_mb: float) -> tuple[list[Path], dict[str, int]]:
    """The first lines of every corpus file, ``size_mb`` in total, shared in the corpus' proportions.
    A multi-line block cut at the end may be incomplete; its first line then is not counted as truth."""
    directory.mkdir(parents=True, exist_ok=True)
    budget = size_mb * 1024 * 1024
    total = sum((info.out / name).stat().st_size for name in info.files)
    files, limits = [], {}
    for name in info.files:
        share = int(budget * (info.out / name).stat().st_size / total)
        with (info.out / name).open("rb") as source:
            data = source.read(share)
        data = data[: data.rfind(b"\n") + 1]
        lines = data.count(b"\n")
        (directory / name).write_bytes(data)
        files.append(directory / name)
        limits[name] = max(0, lines - 60)  # keep clear of a PEM block cut in half
    return files, limits


def rule_stats(files: list[Path]) -> tuple[dict[str, dict[str, int]], float]:
    """Per-rule candidates / confirmed from an in-process scan, and that scan's MB/s (matching only)."""
    from scanner.engine import Scanner  # noqa: PLC0415 - only the stats step needs the engine in-process
    from scanner.fingerprint import Fingerprinter  # noqa: PLC0415
    from scanner.model import Chunk, FileOrigin  # noqa: PLC0415
    from scanner.ruleset import load_ruleset  # noqa: PLC0415

    scanner = Scanner(load_ruleset(), Fingerprinter(b"benchmark-key-" + b"0" * 18))
    size = 0
    start = time.perf_counter()
    for path in files:
        origin = FileOrigin(str(path))
        stream = scanner.stream(origin)
        offset = 0
        with path.open("rb") as handle:
            while chunk := handle.read(1 << 20):
                stream.feed(Chunk(data=chunk, origin=origin, offset=offset))
                offset += len(chunk)
        stream.finish()
        size += offset
    elapsed = time.perf_counter() - start
    rules = scanner.stats.as_dict()["rules"]
    return rules, size / 1e6 / elapsed  # type: ignore[return-value]


def median_run(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.wall)
    return ordered[len(ordered) // 2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mb", type=float, default=20.0, help="corpus size in MiB (default 20)")
    parser.add_argument("--seed", type=int, default=7, help="corpus seed (default 7)")
    parser.add_argument("--slice-mb", type=float, default=1.0, help="detect-secrets slice in MiB (default 1)")
    parser.add_argument("--runs", type=int, default=3, help="jitsec runs; the median is reported (default 3)")
    parser.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "jitsec-bench")
    parser.add_argument("--full", action="store_true", help="the full run: 200 MiB corpus, 5 MiB slice")
    args = parser.parse_args(argv)
    if args.full:
        args.size_mb, args.slice_mb = 200.0, 5.0

    corpus_dir = args.workdir / f"corpus-{args.size_mb:g}mb-seed{args.seed}"
    info = reuse_or_generate(corpus_dir, args.size_mb, args.seed)
    files = [info.out / name for name in info.files]
    size_mb = info.size_bytes / 1e6
    env = {**os.environ, "JITSEC_HOME": str(args.workdir / "jitsec-home")}
    out = args.workdir / "out"
    out.mkdir(parents=True, exist_ok=True)
    print(f"corpus: {size_mb:.1f} MB, {info.lines} lines, {info.positives} planted secrets, "
          f"{info.negatives} hard negatives ({corpus_dir})")

    run_process(jitsec_argv(files[:1], out / "warm.jsonl"), out / "warm.txt", env)  # compile + cache the database
    runs = [run_process(jitsec_argv(files, out / "jitsec.jsonl"), out / "jitsec.txt", env) for _ in range(args.runs)]
    jit = median_run(runs)
    jit_acc = score(jitsec_lines(out / "jitsec.jsonl"), load_truth(info.out))

    slice_files, limits = make_slice(info, args.workdir / f"slice-{args.slice_mb:g}mb", args.slice_mb)
    slice_mb = sum(p.stat().st_size for p in slice_files) / 1e6
    slice_truth = load_truth(info.out, limits)
    cut = {name: limit for name, limit in limits.items()}
    ds = run_process(["detect-secrets", "scan", *(p.name for p in slice_files)], out / "detect-secrets.json",
                     cwd=slice_files[0].parent)
    ds_flagged = {line for line in detect_secrets_lines(out / "detect-secrets.json") if line[1] <= cut[line[0]]}
    ds_acc = score(ds_flagged, slice_truth)
    jit_slice = run_process(jitsec_argv(slice_files, out / "jitsec-slice.jsonl"), out / "jitsec-slice.txt", env)
    jit_slice_flagged = {line for line in jitsec_lines(out / "jitsec-slice.jsonl") if line[1] <= cut[line[0]]}
    jit_slice_acc = score(jit_slice_flagged, slice_truth)

    jit_mbps, ds_mbps = size_mb / jit.wall, slice_mb / ds.wall
    print(f"\njitsec scan, whole corpus, median of {len(runs)} (one process, --jobs 1):")
    print(f"  {jit_mbps:7.1f} MB/s wall   {size_mb / jit.cpu:7.1f} MB/s per CPU-second   "
          f"wall {jit.wall:.2f} s  cpu {jit.cpu:.2f} s  peak RSS {jit.max_rss_mb:.0f} MB")
    print(f"  precision {jit_acc.precision:.4f}  recall {jit_acc.recall:.4f}  "
          f"(TP {jit_acc.tp}, FP {jit_acc.fp}, FN {jit_acc.fn})")
    print(f"\nsame {slice_mb:.2f} MB slice (first lines of every file), both tools:")
    print(f"  detect-secrets {ds_mbps:7.3f} MB/s wall  peak RSS {ds.max_rss_mb:.0f} MB  precision {ds_acc.precision:.4f}"
          f"  recall {ds_acc.recall:.4f}  (TP {ds_acc.tp}, FP {ds_acc.fp}, FN {ds_acc.fn})")
    print(f"  jitsec         {slice_mb / jit_slice.wall:7.3f} MB/s wall  peak RSS {jit_slice.max_rss_mb:.0f} MB  "
          f"precision {jit_slice_acc.precision:.4f}  recall {jit_slice_acc.recall:.4f}  "
          f"(TP {jit_slice_acc.tp}, FP {jit_slice_acc.fp}, FN {jit_slice_acc.fn})")
    print(f"\nspeed ratio (jitsec whole-corpus MB/s / detect-secrets slice MB/s): {jit_mbps / ds_mbps:.0f}x")

    stats, in_process = rule_stats(files)
    candidates = sum(s["candidates"] for s in stats.values())
    print(f"\nin-process matching {in_process:.1f} MB/s; {candidates} candidate windows confirmed in Python "
          f"({100 * candidates / info.lines:.3f}% of lines)")
    print(f"  {'rule':34} {'candidates':>10} {'confirmed':>10}")
    for rule_id, counts in sorted(stats.items(), key=lambda kv: -kv[1]["candidates"]):
        print(f"  {rule_id:34} {counts['candidates']:>10} {counts['confirmed']:>10}")
    missed = Counter(row["family"] for row in map(json.loads, (info.out / TRUTH).read_text().splitlines())
                     if row["positive"] and (row["path"], row["line"]) not in jitsec_lines(out / "jitsec.jsonl"))
    if missed:
        print(f"\njitsec missed by family: {dict(missed)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
