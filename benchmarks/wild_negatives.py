"""False positives in the wild: every file of the installed site-packages and /usr/share/doc, which
no one here wrote and which hold (almost) no live credentials. Every finding is listed for audit, with
its redacted preview; the figure is findings per 100 MB scanned.

    python -m benchmarks.wild_negatives                       # the default trees
    python -m benchmarks.wild_negatives PATH [PATH ...]       # other trees
    python -m benchmarks.wild_negatives --rule generic-        # only rules whose id starts so

What counts as a false positive is an audit call: a credential-shaped test fixture or a vendor's
documented example in a package is reported by any scanner that reads it, and is listed apart
(``fixture-like``: a path under tests/, a test_*.py file, or a value with "test", "fake", "dummy",
"example" in its path or line).
"""

from __future__ import annotations

import argparse
import collections
import json
import site
import subprocess
import sys
import time
from pathlib import Path

_FIXTURE_WORDS = ("test", "fake", "dummy", "example", "sample", "mock", "fixture")


def default_trees() -> list[Path]:
    trees = [Path(path) for path in site.getsitepackages()]
    trees.append(Path("/usr/share/doc"))
    return [tree for tree in trees if tree.is_dir()]


def is_fixture_like(path: str) -> bool:
    lowered = path.lower()
    return any(word in lowered for word in _FIXTURE_WORDS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("trees", nargs="*", type=Path)
    parser.add_argument("--rule", default="", help="only findings of rules whose id starts with this")
    parser.add_argument("--list", type=int, default=60, help="list at most this many findings")
    options = parser.parse_args()
    trees = options.trees or default_trees()
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "jitsec", "scan", "--no-progress", "-f", "json",
                           *map(str, trees)], capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in (0, 1, 2):
        raise SystemExit(f"jitsec scan failed ({done.returncode}): {done.stderr[-2000:]}")
    report = json.loads(done.stdout)
    size = report["summary"]["bytes"]
    rows = [row for row in report["findings"] if row["rule"].startswith(options.rule)]
    fixtures = [row for row in rows if is_fixture_like(row["path"])]
    others = [row for row in rows if not is_fixture_like(row["path"])]
    per_100 = 100e6 / max(size, 1)
    print(f"trees: {', '.join(map(str, trees))}")
    print(f"scanned {size / 1e6:.1f} MB in {report['summary']['files']} files, {seconds:.1f} s")
    print(f"findings: {len(rows)} ({len(rows) * per_100:.2f} per 100 MB); fixture-like paths: "
          f"{len(fixtures)}; others: {len(others)} ({len(others) * per_100:.2f} per 100 MB)")
    by_rule = collections.Counter(row["rule"] for row in others)
    for rule, count in by_rule.most_common():
        print(f"  {rule:44} {count}")
    print(f"\nothers (first {options.list}):")
    for row in others[: options.list]:
        print(f"  {row['rule']:36} {row['preview']:28} {row['path']}:{row['line']}")


if __name__ == "__main__":
    main()
