"""Pre-commit hook latency on a typical commit: ``jitsec hook pre-commit`` against ``detect-secrets-hook``.

Builds a seeded repository (``--files`` source files of a few hundred lines), stages a typical change
(``--changed`` files edited, ``--added-lines`` lines added in all, one new file), then runs each hook
``--runs`` times the way git does (a fresh process per commit) and prints p50/p90 wall time. Both
hooks see the same staged files: jitsec reads the staged diff itself; detect-secrets-hook is given the
staged file names, as the pre-commit framework passes them.

Run:  python -m benchmarks.precommit_latency [--runs 21]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

GIT_ENV = {
    "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.org",
    "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.org",
}  # fmt: skip


def _source_line(rng: random.Random, number: int) -> str:
    choice = rng.random()
    if choice < 0.5:
        return f"    result_{number} = compute(value={rng.randint(0, 10_000)}, retries={rng.randint(1, 5)})\n"
    if choice < 0.8:
        return f'    log.debug("step {number} done", extra={{"elapsed_ms": {rng.random() * 100:.2f}}})\n'
    return f"    # keep step {number} idempotent: callers retry on timeouts\n"


def build_repository(repo: Path, *, files: int, lines: int, seed: int, env: dict[str, str]) -> None:
    rng = random.Random(seed)
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, env=env)
    for index in range(files):
        body = "".join(_source_line(rng, n) for n in range(lines))
        (repo / f"module_{index:03d}.py").write_text(f"def handler_{index}():\n{body}")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True, env=env)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "-m", "base"], check=True, env=env)


def stage_typical_change(
    repo: Path, *, changed: int, added_lines: int, seed: int, env: dict[str, str]
) -> list[str]:
    """Edit ``changed`` files and add one, ``added_lines`` new lines in all; returns the staged names."""
    rng = random.Random(seed + 1)
    names = sorted(path.name for path in repo.glob("module_*.py"))
    touched = rng.sample(names, k=min(changed, len(names)))
    per_file = max(1, added_lines // (len(touched) + 1))
    for name in touched:
        path = repo / name
        lines = path.read_text().splitlines(keepends=True)
        at = rng.randint(1, len(lines))
        lines[at:at] = [_source_line(rng, 90_000 + i) for i in range(per_file)]
        path.write_text("".join(lines))
    new = "module_new.py"
    body = "".join(_source_line(rng, 99_000 + i) for i in range(per_file))
    (repo / new).write_text(f"def added():\n{body}")
    subprocess.run(["git", "-C", str(repo), "add", "."], check=True, env=env)
    return [*touched, new]


def measure(command: list[str], repo: Path, env: dict[str, str], runs: int) -> tuple[list[float], int]:
    times = []
    code = 0
    for _ in range(runs):
        started = time.perf_counter()
        result = subprocess.run(command, cwd=repo, env=env, capture_output=True, check=False)
        times.append(time.perf_counter() - started)
        code = result.returncode
    return times, code


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def installed_script(name: str) -> str | None:
    """The console script installed with this interpreter, else the first on PATH. A version
    manager's shim on PATH (pyenv's is a shell script) would add its own start-up to both hooks."""
    beside = Path(sysconfig.get_path("scripts")) / name
    return str(beside) if beside.is_file() else shutil.which(name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--changed", type=int, default=5)
    parser.add_argument("--added-lines", type=int, default=120)
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args(argv)

    env = {**os.environ, **GIT_ENV, "JITSEC_FINGERPRINT_KEY": "44" * 32}
    jitsec = installed_script("jitsec") or "jitsec"
    detect_secrets_hook = installed_script("detect-secrets-hook")
    with tempfile.TemporaryDirectory(prefix="jitsec-hook-bench-") as tmp:
        repo = Path(tmp) / "repo"
        build_repository(repo, files=args.files, lines=args.lines, seed=args.seed, env=env)
        staged = stage_typical_change(
            repo, changed=args.changed, added_lines=args.added_lines, seed=args.seed, env=env
        )
        diff = subprocess.run(["git", "-C", str(repo), "diff", "--cached", "--numstat"], capture_output=True,
                              text=True, check=True).stdout.split()
        added = sum(int(value) for value in diff[0::3])
        size = sum((repo / name).stat().st_size for name in staged)
        print(f"typical commit: {len(staged)} files staged ({size / 1e3:.0f} kB), {added} lines added; "
              f"{args.runs} runs each, fresh process per run")
        measure([jitsec, "hook", "pre-commit"], repo, env, 1)  # warm: compiled rules land in the cache
        rows = [("jitsec hook pre-commit", *measure([jitsec, "hook", "pre-commit"], repo, env, args.runs))]
        if detect_secrets_hook is not None:
            command = [detect_secrets_hook, *staged]
            measure(command, repo, env, 1)
            rows.append(("detect-secrets-hook FILES", *measure(command, repo, env, args.runs)))
        for name, times, code in rows:
            p50, p90 = percentile(times, 50) * 1000, percentile(times, 90) * 1000
            print(f"{name:28s} p50 {p50:6.0f} ms  p90 {p90:6.0f} ms"
                  f"  mean {statistics.fmean(times) * 1000:6.0f} ms  (exit {code})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
