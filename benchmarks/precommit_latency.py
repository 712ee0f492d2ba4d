"""Pre-commit hook latency on a typical commit: ``jitsec hook pre-commit`` against gitleaks and
``detect-secrets-hook``, side by side in one run.

Builds a seeded repository (``--files`` source files of a few hundred lines), stages a typical change
(``--changed`` files edited, ``--added-lines`` lines added in all, one new file), then runs each hook
``--runs`` times the way git does (a fresh process per commit), the tools taking turns run by run so
that a busy machine slows them alike, and prints p50/p90 wall time and jitsec's p50 as a multiple of
each peer's. All hooks see the same staged changes: jitsec and gitleaks (``git --pre-commit
--staged``) read the staged diff themselves; detect-secrets-hook is given the staged file names, as
the pre-commit framework passes them.

gitleaks is taken from PATH or ``$(go env GOPATH)/bin``; when missing it is built from its Go module
with the Go toolchain (``--no-build`` to skip); when neither works its row is skipped with a line
saying why. jitsec is timed as a user runs it: built into a wheel and installed, with its
dependencies, into a throwaway virtual environment (``pip install jitsec`` compiles the bytecode;
a development install's import hook alone adds some 15 ms to every start). ``--this-interpreter``
times this interpreter's jitsec instead (byte-compiled first).

Run:  python -m benchmarks.precommit_latency [--runs 21] [--this-interpreter]
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


def timed(command: list[str], repo: Path, env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=repo, env=env, capture_output=True, check=False)
    return time.perf_counter() - started, result.returncode


def measure_in_turns(
    commands: dict[str, list[str]], repo: Path, env: dict[str, str], runs: int
) -> dict[str, tuple[list[float], int]]:
    """``runs`` timings per command, the commands taking turns; one untimed warm-up each first."""
    for command in commands.values():
        timed(command, repo, env)
    times: dict[str, list[float]] = {name: [] for name in commands}
    codes: dict[str, int] = {}
    for _ in range(runs):
        for name, command in commands.items():
            elapsed, codes[name] = timed(command, repo, env)
            times[name].append(elapsed)
    return {name: (times[name], codes.get(name, 0)) for name in commands}


GITLEAKS_MODULE = "github.com/zricethezav/gitleaks/v8@latest"


def find_gitleaks(build: bool) -> tuple[str | None, str]:
    """The gitleaks binary and how it was found, or None and why not."""
    found = shutil.which("gitleaks")
    if found:
        return found, "from PATH"
    go = shutil.which("go")
    if go is None:
        return None, "gitleaks is not on PATH and there is no Go toolchain to build it"
    gopath = subprocess.run([go, "env", "GOPATH"], capture_output=True, text=True, check=False).stdout.strip()
    candidate = Path(gopath or Path.home() / "go") / "bin" / "gitleaks"
    if candidate.is_file():
        return str(candidate), f"from {candidate.parent}"
    if not build:
        return None, "gitleaks not found (--no-build given)"
    print(f"building gitleaks: go install {GITLEAKS_MODULE} ...", flush=True)
    result = subprocess.run([go, "install", GITLEAKS_MODULE], capture_output=True, text=True, check=False)
    if result.returncode != 0 or not candidate.is_file():
        return None, f"building gitleaks failed: {result.stderr.strip()[-300:]}"
    return str(candidate), f"built with go install into {candidate.parent}"


def byte_compile_jitsec() -> None:
    """Write jitsec's bytecode as an install does (a source tree run with PYTHONDONTWRITEBYTECODE
    would otherwise compile every module on every run, which no installed hook does)."""
    import jitsec  # noqa: PLC0415 - only to locate the package

    for root in {Path(path).resolve() for path in jitsec.__path__}:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(root.parent)], check=False,
                       capture_output=True)


def install_from_wheel(into: Path) -> str:
    """Build this source tree's wheel and install it into a new virtual environment under ``into``;
    returns its ``jitsec`` script."""
    source = Path(__file__).resolve().parent.parent
    wheels = into / "wheels"
    print("building and installing jitsec's wheel into a throwaway virtual environment ...", flush=True)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
                   check=True, capture_output=True)
    venv = into / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    (wheel,) = wheels.glob("jitsec-*.whl")
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", str(wheel)], check=True,
                   capture_output=True)
    return str(venv / "bin" / "jitsec")


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
    parser.add_argument("--no-build", action="store_true", help="Do not build gitleaks when it is missing.")
    parser.add_argument("--jitsec", help="The jitsec executable to time (default: a fresh wheel install).")
    parser.add_argument("--this-interpreter", action="store_true",
                        help="Time this interpreter's jitsec (a development install) instead of a wheel.")
    args = parser.parse_args(argv)

    env = {**os.environ, **GIT_ENV, "JITSEC_FINGERPRINT_KEY": "44" * 32}
    detect_secrets_hook = installed_script("detect-secrets-hook")
    gitleaks, gitleaks_how = find_gitleaks(build=not args.no_build)
    with tempfile.TemporaryDirectory(prefix="jitsec-hook-bench-") as tmp:
        if args.jitsec:
            jitsec = args.jitsec
        elif args.this_interpreter:
            byte_compile_jitsec()
            jitsec = installed_script("jitsec") or "jitsec"
        else:
            jitsec = install_from_wheel(Path(tmp))
        print(f"jitsec: {jitsec}")
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
              f"{args.runs} runs each, fresh process per run, tools taking turns")
        commands = {"jitsec hook pre-commit": [jitsec, "hook", "pre-commit"]}
        if gitleaks is not None:
            commands["gitleaks git --pre-commit --staged"] = [
                gitleaks, "git", "--pre-commit", "--staged", "--no-banner", "--log-level", "error", "."]
        if detect_secrets_hook is not None:
            commands["detect-secrets-hook FILES"] = [detect_secrets_hook, *staged]
        results = measure_in_turns(commands, repo, env, args.runs)
        for name, (times, code) in results.items():
            p50, p90 = percentile(times, 50) * 1000, percentile(times, 90) * 1000
            print(f"{name:36s} p50 {p50:6.0f} ms  p90 {p90:6.0f} ms"
                  f"  mean {statistics.fmean(times) * 1000:6.0f} ms  (exit {code})")
        ours = percentile(results["jitsec hook pre-commit"][0], 50)
        for name, (times, _) in results.items():
            if name != "jitsec hook pre-commit":
                print(f"jitsec p50 / {name.split()[0]} p50 = {ours / percentile(times, 50):.2f}x")
        if gitleaks is None:
            print(f"gitleaks skipped: {gitleaks_how}")
        else:
            print(f"gitleaks {gitleaks_how}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
