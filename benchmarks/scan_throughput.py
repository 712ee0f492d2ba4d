"""Scan throughput and accuracy: ``jitsec scan`` against detect-secrets on the seeded corpus.

Both tools run as whole processes (start-up, rule loading and output included). jitsec scans the whole
corpus (median of several runs); detect-secrets, being ~1,000 times slower, scans a slice made of the
first lines of every corpus file, and jitsec scans that same slice too, so accuracy is also compared on
identical input. Per-process CPU time and peak RSS come from ``os.wait4``. Precision and recall are by
line against the corpus ground truth. Per-rule candidate / confirmed counts come from ``jitsec scan --stats``
over the corpus.

    python -m benchmarks.scan_throughput            # short: 20 MB corpus, 1 MB detect-secrets slice
    python -m benchmarks.scan_throughput --full     # 200 MB corpus, 5 MB slice
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
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


def run_process(
    argv: list[str],
    stdout: Path,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stderr: Path | None = None,
) -> Run:
    """Run one process to completion; wall time, user+sys CPU and peak RSS of that process alone.
    (detect-secrets runs inside the slice directory: in a git work tree it skips untracked paths.)"""
    with stdout.open("wb") as out:
        start = time.perf_counter()
        err = stderr.open("wb") if stderr is not None else subprocess.DEVNULL
        try:
            process = subprocess.Popen(argv, stdout=out, stderr=err, env=env, cwd=cwd)
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            if stderr is not None:
                err.close()  # type: ignore[union-attr]
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
        name = Path(finding["path"]).name
        lines.add((name, int(finding["line"])))
        lines.update((name, int(related["line"])) for related in finding.get("related", ()))  # a pair's half
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


_STAT_ROW = re.compile(r"stats: (\S+)\s+candidates\s+(\d+)\s+confirmed\s+(\d+)")


def rule_stats(setup: Setup) -> tuple[list[str], dict[str, tuple[int, int]]]:
    """``jitsec scan --stats`` over the corpus: its summary lines and per-rule (candidates, confirmed)."""
    errors = setup.out / "stats.txt"
    argv = jitsec_argv(setup.files, setup.out / "stats.jsonl")
    run_process(
        [*argv[: -len(setup.files)], "--stats", *map(str, setup.files)],
        setup.out / "stats.out",
        setup.env,
        stderr=errors,
    )
    summary, rules = [], {}
    for line in errors.read_text(encoding="utf-8", errors="replace").splitlines():
        row = _STAT_ROW.search(line)
        if row:
            rules[row[1]] = (int(row[2]), int(row[3]))
        elif "stats:" in line:
            summary.append(line.split("stats:", 1)[1].strip())
    return summary, rules


def median_run(runs: list[Run]) -> Run:
    ordered = sorted(runs, key=lambda r: r.wall)
    return ordered[len(ordered) // 2]


@dataclass(frozen=True, slots=True)
class Setup:
    info: CorpusInfo
    files: list[Path]
    out: Path
    env: dict[str, str]
    runs: int

    @property
    def size_mb(self) -> float:
        return self.info.size_bytes / 1e6


def measure_jitsec(setup: Setup, workdir: Path) -> tuple[Run, Run, Accuracy]:
    """Start-up alone (an empty file) and whole-corpus runs, medians; accuracy of the last run."""
    empty = workdir / "empty.log"
    empty.write_bytes(b"")
    out, env = setup.out, setup.env
    run_process(jitsec_argv([empty], out / "warm.jsonl"), out / "warm.txt", env)  # builds the cached database
    startup = median_run(
        [
            run_process(jitsec_argv([empty], out / "empty.jsonl"), out / "empty.txt", env)
            for _ in range(setup.runs)
        ]
    )
    jit = median_run(
        [
            run_process(jitsec_argv(setup.files, out / "jitsec.jsonl"), out / "jitsec.txt", env)
            for _ in range(setup.runs)
        ]
    )
    return startup, jit, score(jitsec_lines(out / "jitsec.jsonl"), load_truth(setup.info.out))


def compare_on_slice(
    setup: Setup, directory: Path, slice_mb: float
) -> tuple[float, Run, Accuracy, Run, Accuracy]:
    """detect-secrets and jitsec on the same slice: (MB, ds run, ds accuracy, jitsec run, jitsec accuracy)."""
    files, limits = make_slice(setup.info, directory, slice_mb)
    size = sum(p.stat().st_size for p in files) / 1e6
    truth = load_truth(setup.info.out, limits)
    out = setup.out
    ds = run_process(
        ["detect-secrets", "scan", *(p.name for p in files)], out / "ds.json", cwd=files[0].parent
    )
    ds_lines = {line for line in detect_secrets_lines(out / "ds.json") if line[1] <= limits[line[0]]}
    jit = run_process(jitsec_argv(files, out / "jitsec-slice.jsonl"), out / "jitsec-slice.txt", setup.env)
    jit_lines = {line for line in jitsec_lines(out / "jitsec-slice.jsonl") if line[1] <= limits[line[0]]}
    return size, ds, score(ds_lines, truth), jit, score(jit_lines, truth)


def _accuracy(acc: Accuracy) -> str:
    return f"precision {acc.precision:.4f}  recall {acc.recall:.4f}  (TP {acc.tp}, FP {acc.fp}, FN {acc.fn})"


def print_rule_stats(setup: Setup) -> None:
    summary, rules = rule_stats(setup)
    print("\njitsec scan --stats over the corpus:")
    for line in summary:
        print(f"  {line}")
    print(f"  {'rule':34} {'candidates':>10} {'confirmed':>10}")
    for rule_id, (candidates, confirmed) in sorted(rules.items(), key=lambda kv: -kv[1][0]):
        print(f"  {rule_id:34} {candidates:>10} {confirmed:>10}")
    flagged = jitsec_lines(setup.out / "jitsec.jsonl")
    rows = map(json.loads, (setup.info.out / TRUTH).read_text(encoding="utf-8").splitlines())
    missed = Counter(r["family"] for r in rows if r["positive"] and (r["path"], r["line"]) not in flagged)
    if missed:
        print(f"\njitsec missed, by family: {dict(missed)}")


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
    setup = Setup(
        info,
        [info.out / name for name in info.files],
        args.workdir / "out",
        {**os.environ, "JITSEC_HOME": str(args.workdir / "jitsec-home")},
        args.runs,
    )
    setup.out.mkdir(parents=True, exist_ok=True)
    print(
        f"corpus: {setup.size_mb:.1f} MB, {info.lines} lines, {info.positives} planted secrets, "
        f"{info.negatives} hard negatives ({corpus_dir})"
    )

    startup, jit, jit_acc = measure_jitsec(setup, args.workdir)
    print(f"\njitsec scan, whole corpus, median of {args.runs} runs (one process, --jobs 1):")
    print(
        f"  {setup.size_mb / jit.wall:7.1f} MB/s wall   {setup.size_mb / jit.cpu:7.1f} MB per CPU-second   "
        f"wall {jit.wall:.2f} s  cpu {jit.cpu:.2f} s  peak RSS {jit.max_rss_mb:.0f} MB"
    )
    print(
        f"  start-up alone (empty file): wall {startup.wall:.2f} s  cpu {startup.cpu:.2f} s; after start-up "
        f"{setup.size_mb / max(jit.cpu - startup.cpu, 1e-9):.1f} MB per CPU-second"
    )
    print(f"  {_accuracy(jit_acc)}")

    slice_mb, ds, ds_acc, jit_slice, slice_acc = compare_on_slice(
        setup, args.workdir / f"slice-{args.slice_mb:g}mb", args.slice_mb
    )
    print(f"\nthe same {slice_mb:.2f} MB slice (first lines of every file), both tools, one run each:")
    print(
        f"  detect-secrets {slice_mb / ds.wall:8.3f} MB/s wall {slice_mb / ds.cpu:8.3f} MB per CPU-second  "
        f"peak RSS {ds.max_rss_mb:.0f} MB  {_accuracy(ds_acc)}"
    )
    print(
        f"  jitsec         {slice_mb / jit_slice.wall:8.3f} MB/s wall "
        f"{slice_mb / jit_slice.cpu:8.3f} MB per CPU-second  "
        f"peak RSS {jit_slice.max_rss_mb:.0f} MB  {_accuracy(slice_acc)}"
    )
    print(
        f"\nspeed ratio, jitsec whole corpus / detect-secrets slice: "
        f"{(setup.size_mb / jit.wall) / (slice_mb / ds.wall):.0f}x by wall time, "
        f"{(setup.size_mb / jit.cpu) / (slice_mb / ds.cpu):.0f}x by CPU time"
    )
    print_rule_stats(setup)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
