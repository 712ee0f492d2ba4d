"""Detection accuracy on the blind corpus (benchmarks/blind): recall and precision by line, by
credential family and by file format, for jitsec and, when installed, detect-secrets and gitleaks.

The corpus was written by an author who never saw the rules, from a brief of formats and contexts,
and frozen (MANIFEST.sha256) before any tuning; this script refuses a corpus whose digest differs.

    python -m benchmarks.blind_eval                    # jitsec only
    python -m benchmarks.blind_eval --peers            # plus detect-secrets and gitleaks, when present
    python -m benchmarks.blind_eval --misses 30        # also list missed and false lines (redacted)

A finding counts for the label on its line (a PEM block's BEGIN line); a finding on a line with no
label is a false positive; several findings on one line count once. Precision is by line.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
CORPUS = HERE / "blind"
DEFAULT_OUT = HERE / "out" / "blind-corpus"


@dataclass
class Score:
    labelled: int = 0
    found: int = 0
    false: int = 0

    @property
    def recall(self) -> float:
        return self.found / self.labelled if self.labelled else 1.0

    @property
    def precision(self) -> float:
        reported = self.found + self.false
        return self.found / reported if reported else 1.0


@dataclass
class Result:
    tool: str
    seconds: float
    total: Score = field(default_factory=Score)
    by_family: dict[str, Score] = field(default_factory=lambda: collections.defaultdict(Score))
    by_format: dict[str, Score] = field(default_factory=lambda: collections.defaultdict(Score))
    misses: list[tuple[str, int, str]] = field(default_factory=list)
    falses: list[tuple[str, int, str]] = field(default_factory=list)


def expected_digest() -> str:
    return (CORPUS / "MANIFEST.sha256").read_text().split()[0]


def tree_digest(root: Path) -> str:
    """The corpus author's digest: SHA-256 over sorted ``path NUL sha256 NEWLINE`` lines."""
    lines = []
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        relative = path.relative_to(root).as_posix()
        lines.append(f"{relative}\0{hashlib.sha256(path.read_bytes()).hexdigest()}\n")
    return hashlib.sha256("".join(sorted(lines)).encode()).hexdigest()


def corpus(out: Path) -> Path:
    """The generated corpus, regenerated when absent or not the frozen one."""
    if not (out / "labels.jsonl").is_file() or tree_digest(out) != expected_digest():
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        subprocess.run([sys.executable, str(CORPUS / "make_corpus.py"), str(out)], check=True,
                       stdout=subprocess.DEVNULL)
        digest = tree_digest(out)
        if digest != expected_digest():
            raise SystemExit(f"the corpus is not the frozen one: {digest} != {expected_digest()}")
    return out


def labels(root: Path) -> list[dict]:
    return [json.loads(line) for line in (root / "labels.jsonl").read_text().splitlines() if line]


def run_jitsec(root: Path) -> tuple[set[tuple[str, int]], float]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "jitsec", "scan", "--no-progress", "-f", "json", str(root)],
                          capture_output=True, text=True, check=False)
    if done.returncode not in (0, 1):
        raise SystemExit(f"jitsec scan failed ({done.returncode}): {done.stderr[-2000:]}")
    rows = json.loads(done.stdout)["findings"]
    lines = {(Path(row["path"]).relative_to(root).as_posix(), line)  # a paired finding names both lines
             for row in rows
             for line in (row["line"], *(related["line"] for related in row.get("related", ())))}
    return lines, time.perf_counter() - started


def run_detect_secrets(root: Path) -> tuple[set[tuple[str, int]], float] | None:
    if shutil.which("detect-secrets") is None:
        return None
    started = time.perf_counter()
    done = subprocess.run(["detect-secrets", "scan", "--all-files", "."], cwd=root, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        return None
    results = json.loads(done.stdout)["results"]
    hits = {(path, item["line_number"]) for path, items in results.items() for item in items}
    return hits, time.perf_counter() - started


def run_gitleaks(root: Path) -> tuple[set[tuple[str, int]], float] | None:
    binary = shutil.which("gitleaks") or str(Path.home() / "go" / "bin" / "gitleaks")
    if not Path(binary).exists():
        return None
    with tempfile.TemporaryDirectory() as scratch:
        report = Path(scratch) / "report.json"
        started = time.perf_counter()
        subprocess.run([binary, "dir", str(root), "--no-banner", "--report-format", "json",
                        "--report-path", str(report), "--exit-code", "0"], capture_output=True, check=False)
        seconds = time.perf_counter() - started
        if not report.exists():
            return None
        rows = json.loads(report.read_text() or "[]")
    return {(Path(row["File"]).resolve().relative_to(root.resolve()).as_posix(), row["StartLine"])
            for row in rows}, seconds


def score(tool: str, hits: set[tuple[str, int]], seconds: float, truth: list[dict], root: Path) -> Result:
    result = Result(tool, seconds)
    labelled: dict[tuple[str, int], list[dict]] = collections.defaultdict(list)
    for label in truth:
        labelled[(label["path"], label["line"])].append(label)
    for key, group in labelled.items():
        for label in group:
            hit = key in hits
            buckets = (result.total, result.by_family[label["family"]], result.by_format[label["format"]])
            for bucket in buckets:
                bucket.labelled += 1
                bucket.found += hit
            if not hit:
                result.misses.append((*key, label["provider"]))
    for key in hits - labelled.keys():
        result.total.false += 1
        fmt = _format_of(key[0], truth)
        result.by_format[fmt].false += 1
        result.falses.append((*key, fmt))
    return result


def _format_of(path: str, truth: Iterable[dict]) -> str:
    for label in truth:
        if label["path"] == path:
            return label["format"]
    return "(negative file)"


def _redacted_line(root: Path, path: str, line: int) -> str:
    try:
        text = (root / path).read_text(errors="replace").splitlines()[line - 1]
    except (OSError, IndexError):
        return ""
    text = text.strip()[:100]
    return "".join(ch if not ch.isalnum() or index % 3 == 0 else "·" for index, ch in enumerate(text))


def report(results: list[Result], root: Path, misses: int) -> None:
    files = sum(1 for path in root.rglob("*") if path.is_file()) - 1  # labels.jsonl is not a corpus file
    labelled = results[0].total.labelled
    print(f"blind corpus {expected_digest()[:16]}: {files} files, {labelled} labelled secrets\n")
    print(f"{'tool':16} {'recall':>7} {'precision':>9} {'found':>6} {'false':>6} {'seconds':>8}")
    for result in results:
        t = result.total
        print(f"{result.tool:16} {t.recall:7.3f} {t.precision:9.3f} {t.found:6} {t.false:6} "
              f"{result.seconds:8.1f}")
    for title, attribute in (("credential family", "by_family"), ("file format", "by_format")):
        print(f"\nby {title} (recall / precision)")
        keys = sorted({key for result in results for key in getattr(result, attribute)})
        print(f"{'':18}" + "".join(f"{result.tool:>20}" for result in results))
        for key in keys:
            cells = []
            for result in results:
                bucket = getattr(result, attribute).get(key, Score())
                cells.append(f"{bucket.recall:.2f} / {bucket.precision:.2f} ({bucket.labelled})")
            print(f"{key:18}" + "".join(f"{cell:>20}" for cell in cells))
    if misses:
        ours = results[0]
        print(f"\nmissed by {ours.tool} (first {misses}, characters redacted):")
        for path, line, provider in sorted(ours.misses)[:misses]:
            print(f"  {provider:22} {path}:{line}  {_redacted_line(root, path, line)}")
        print(f"\nfalse lines of {ours.tool} (first {misses}):")
        for path, line, fmt in sorted(ours.falses)[:misses]:
            print(f"  {fmt:22} {path}:{line}  {_redacted_line(root, path, line)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="where the corpus is generated")
    parser.add_argument("--peers", action="store_true", help="also run detect-secrets and gitleaks")
    parser.add_argument("--misses", type=int, default=0, help="list this many missed and false lines")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON here")
    options = parser.parse_args()
    root = corpus(options.out)
    truth = labels(root)
    results = [score("jitsec", *run_jitsec(root), truth, root)]
    if options.peers:
        for name, runner in (("detect-secrets", run_detect_secrets), ("gitleaks", run_gitleaks)):
            outcome = runner(root)
            if outcome is None:
                print(f"{name}: not available here, skipped", file=sys.stderr)
            else:
                results.append(score(name, *outcome, truth, root))
    report(results, root, options.misses)
    if options.json:
        options.json.write_text(json.dumps({r.tool: {"recall": r.total.recall, "precision": r.total.precision,
                                                     "by_family": {k: [v.recall, v.precision] for k, v in
                                                                   r.by_family.items()}} for r in results},
                                           indent=2))


if __name__ == "__main__":
    main()
