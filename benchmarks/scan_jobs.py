"""``jitsec scan --jobs`` on a tree of many small files: 1 against 2 against 4 jobs, whole processes.

    python -m benchmarks.scan_jobs                  # 20,000 files of 1-20 log lines, 3 rounds
    python -m benchmarks.scan_jobs --files 100000

Prints, per job count, the median wall time and CPU seconds (user + system, from ``os.wait4``) over
interleaved rounds, so a busy machine weighs on every job count alike. Ten of the files hold a secret;
every run must report all ten.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
from pathlib import Path

from benchmarks.scan_throughput import jitsec_argv, run_process
from jitsec.kernel.credential_format import mint

JOBS = (1, 2, 4)
PLANTED = 10


def make_tree(root: Path, files: int) -> None:
    rng = random.Random(5)
    for number in range(files):
        directory = root / f"d{number // 1000:03d}"
        if number % 1000 == 0:
            directory.mkdir()
        lines = [f"2026-12-07T02:00:{n % 60:02d}Z INFO request {rng.randrange(10**6)} served in "
                 f"{rng.randrange(100)} ms\n" for n in range(rng.randrange(1, 21))]
        if number % (files // PLANTED) == 0:
            lines.append(f"retrying with token={mint('jit_')}\n")
        (directory / f"f{number:06d}.log").write_text("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=3)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="jitsec-jobs-") as tmp:
        root, output = Path(tmp) / "tree", Path(tmp) / "out.jsonl"
        root.mkdir()
        make_tree(root, options.files)
        runs: dict[int, list[tuple[float, float]]] = {jobs: [] for jobs in JOBS}
        for _ in range(options.rounds):
            for jobs in JOBS:
                argv = jitsec_argv([root], output)
                run = run_process([*argv[:2], "--jobs", str(jobs), *argv[2:]], Path(tmp) / "stdout")
                found = sum(1 for line in output.read_text().splitlines() if line.startswith("{"))
                if found != PLANTED:
                    raise SystemExit(f"--jobs {jobs}: {found} findings, expected {PLANTED}")
                runs[jobs].append((run.wall, run.cpu))
    for jobs in JOBS:
        walls, cpus = zip(*runs[jobs], strict=True)
        figures = {"files": options.files, "wall_s": round(statistics.median(walls), 2),
                   "cpu_s": round(statistics.median(cpus), 2)}
        print(f"--jobs {jobs}: " + json.dumps(figures))


if __name__ == "__main__":
    main()
