"""Git history scan throughput: ``git:PATH`` (each blob once) against ``git log -p | jitsec scan -``.

Builds a seeded repository with ``git fast-import`` (files that grow commit after commit, with broker
credentials planted in some commits), then measures, on the same history:

- jitsec's history source through the scanner pipeline, in-process (MB/s of unique blob bytes);
- the same as a whole process, ``jitsec scan git:REPO`` (start-up included);
- the peer: ``git log -p --all | jitsec scan -`` (MB/s of the patch stream it has to read);
- ``git log -p --all`` alone, the floor of the peer;
- optionally (``--detect-secrets``) detect-secrets on the first MB of that patch stream.

Recall is checked on the planted credentials. Run:  python -m benchmarks.git_history [--commits N]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from jitsec.connectors.sources.git import GitHistorySource
from jitsec.scanner.engine import Scanner
from jitsec.scanner.fingerprint import Fingerprinter
from jitsec.scanner.ruleset import load_ruleset

from jitsec.kernel.credential_format import CredentialKind, mint
from jitsec.kernel.records import Finding
from jitsec.pipeline.runner import run_sources
from jitsec.pipeline.stages import Callback

WORDS = ("user", "order", "cache", "session", "request", "payment", "invoice", "retry", "worker", "queue")


@dataclass(frozen=True, slots=True)
class History:
    repo: Path
    commits: int
    blob_bytes: int  # sum of the sizes of every distinct blob version
    planted: frozenset[str]  # SHA-256 of each planted credential


def _line(rng: random.Random, number: int) -> str:
    kind = rng.random()
    word = rng.choice(WORDS)
    if kind < 0.4:
        return f"    def handle_{word}_{number}(self, {word}_id: int) -> None:  # line {number}\n"
    if kind < 0.7:
        trace = f"{rng.getrandbits(128):032x}"
        return f'log.info("{word} processed", extra={{"trace_id": "{trace}", "n": {number}}})\n'
    if kind < 0.9:
        return f"{word.upper()}_TIMEOUT_SECONDS = {rng.randint(1, 300)}\n"
    return f"# {word} {word} sha256:{hashlib.sha256(str(number).encode()).hexdigest()}\n"


def build_history(out: Path, *, commits: int, files: int, lines_per_commit: int, seed: int) -> History:
    """A repository whose every commit appends lines to a few files; every 20th commit leaks a token."""
    rng = random.Random(seed)
    out.mkdir(parents=True, exist_ok=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(out)], check=True)
    contents = [b"" for _ in range(files)]
    planted: set[str] = set()
    blob_bytes = 0
    stream = bytearray()
    for number in range(commits):
        stream += b"commit refs/heads/main\n"
        stream += b"committer Bench <bench@example.org> %d +0000\n" % (1_700_000_000 + number)
        stream += b"data 12\ncommit %05d\n" % number
        for index in rng.sample(range(files), k=min(4, files)):
            added = "".join(_line(rng, number * 1000 + i) for i in range(lines_per_commit))
            if number % 20 == 7:
                token = mint(CredentialKind.ENGINE_TOKEN, randbelow=rng.randrange)
                planted.add(hashlib.sha256(token.encode()).hexdigest())
                added += f'API_TOKEN = "{token}"\n'
            contents[index] += added.encode()
            blob_bytes += len(contents[index])
            stream += b"M 100644 inline src/module_%03d.py\n" % index
            stream += b"data %d\n" % len(contents[index]) + contents[index] + b"\n"
    subprocess.run(["git", "-C", str(out), "fast-import", "--quiet"], input=bytes(stream), check=True)
    return History(out, commits, blob_bytes, frozenset(planted))


def _time(command: list[str], env: dict[str, str] | None = None, repeat: int = 3) -> float:
    """Best wall time of ``repeat`` runs (the first one also warms caches and the rule database)."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=False, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def _time_pipe(producer: list[str], consumer: list[str], env: dict[str, str], repeat: int = 3) -> float:
    """Best wall time of ``producer | consumer``, as a shell pipeline runs them."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        with subprocess.Popen(producer, stdout=subprocess.PIPE) as first:
            subprocess.run(consumer, stdin=first.stdout, env=env, check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        best = min(best, time.perf_counter() - started)
    return best


def in_process(history: History, scanner: Scanner) -> tuple[float, list[Finding], GitHistorySource]:
    found: list[Finding] = []
    source = GitHistorySource(history.repo)
    started = time.perf_counter()
    run_sources([source], scanner, [Callback(lambda chunk, findings: found.extend(findings))])
    return time.perf_counter() - started, found, source


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--commits", type=int, default=300)
    parser.add_argument("--files", type=int, default=40)
    parser.add_argument("--lines-per-commit", type=int, default=30)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--detect-secrets", action="store_true", help="also time detect-secrets on 1 MB of patches"
    )
    args = parser.parse_args(argv)

    env = {**os.environ, "JITSEC_FINGERPRINT_KEY": "33" * 32}
    jitsec = shutil.which("jitsec") or "jitsec"
    with tempfile.TemporaryDirectory(prefix="jitsec-git-bench-") as tmp:
        history = build_history(
            Path(tmp) / "repo", commits=args.commits, files=args.files,
            lines_per_commit=args.lines_per_commit, seed=args.seed,
        )  # fmt: skip
        patch = Path(tmp) / "history.patch"
        with patch.open("wb") as handle:
            subprocess.run(["git", "-C", str(history.repo), "log", "-p", "--all"], stdout=handle, check=True)
        patch_bytes = patch.stat().st_size
        scanner = Scanner(load_ruleset(), Fingerprinter(b"b" * 32))
        in_process(history, scanner)  # warm the page cache
        seconds, found, source = min((in_process(history, scanner) for _ in range(3)), key=lambda r: r[0])
        hits = {f.credential_sha256 for f in found if f.credential_sha256}
        recall = len(hits & history.planted) / max(1, len(history.planted))
        whole = _time([jitsec, "scan", f"git:{history.repo}", "-f", "jsonl"], env=env)
        log_p = ["git", "-C", str(history.repo), "log", "-p", "--all"]
        git_only = _time(log_p)
        peer = _time_pipe(log_p, [jitsec, "scan", "-", "-f", "jsonl"], env)
        mb = history.blob_bytes / 1e6
        print(f"history: {history.commits} commits, {source.stats.blobs_scanned} blobs, "
              f"{mb:.1f} MB of blobs, {patch_bytes / 1e6:.1f} MB as `git log -p`, "
              f"{len(history.planted)} planted credentials")
        print(f"jitsec git: (in-process)       {seconds:7.2f} s  {mb / seconds:7.1f} MB/s of blobs  "
              f"recall {recall:.2f}")
        print(f"jitsec scan git: (process)     {whole:7.2f} s  {mb / whole:7.1f} MB/s of blobs")
        print(f"git log -p | jitsec scan -     {peer:7.2f} s  "
              f"{patch_bytes / 1e6 / peer:7.1f} MB/s of patches")
        print(f"git log -p alone               {git_only:7.2f} s")
        print(f"history covered per second: git: {mb / seconds:.1f} MB vs log-p pipe {mb / peer:.1f} MB "
              f"({peer / seconds:.1f}x)")
        if args.detect_secrets:
            sample = Path(tmp) / "sample.patch"
            sample.write_bytes(patch.read_bytes()[:1_000_000])
            ds = _time(["detect-secrets", "scan", str(sample)])
            print(f"detect-secrets scan (1 MB)     {ds:7.2f} s  {1.0 / ds:7.2f} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
