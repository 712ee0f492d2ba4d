from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from jitsec.scanner.baseline import baseline_document
from jitsec.scanner.fingerprint import Fingerprinter

from jitsec.kernel.credential_format import mint
from jitsec.kernel.records import Finding
from jitsec.pipeline.builder import Pipeline, PipelineSettings, RuleSettings, build_pipeline
from jitsec.pipeline.paths import ScanResult, Tally, scan_addresses
from jitsec.pipeline.stages import emitting

PACK = Path(__file__).parents[1] / "connectors" / "packs" / "broker.toml"


def scan_once(address: str, result: ScanResult, emitted: list[Finding] | None = None,
              baseline: Path | None = None) -> Pipeline:
    """``git:`` address through the builder's pipeline: the broker pack, one fixed key."""
    settings = PipelineSettings(rules=RuleSettings(packs=(PACK,), include_default=False, engine="python"),
                                baselines=(baseline,) if baseline else ())
    collected = emitted if emitted is not None else []
    with build_pipeline(settings, tail=[Tally(result), emitting(collected.extend)],
                        fingerprinter=Fingerprinter(b"f" * 32)) as pipeline:
        scan_addresses(pipeline, [address], result)
    result.baselined = pipeline.accepted
    return pipeline


def test_git_address_is_scanned_once_with_baseline_and_errors(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    (repo / "a.env").write_text(f"T={mint('jit_')}\n")
    (repo / "b.env").write_text(f"T={mint('jit_')}\n")
    git_repo("add", ".")
    git_repo("commit", "-q", "-m", "two leaks")
    emitted: list[Finding] = []
    result = ScanResult()
    scan_once(f"git:{repo}", result, emitted)
    assert result.findings == 2 and result.files == 2 and result.errors.total == 0
    accepted = tmp_path / "accepted.baseline"
    accepted.write_text(json.dumps(baseline_document(emitted[:1], "digest")))
    again = ScanResult()
    scan_once(f"git:{repo}", again, baseline=accepted)
    assert (again.findings, again.baselined) == (2, 0)  # a baseline never hides a broker credential
    broken = ScanResult()
    scan_once(f"git:{tmp_path / 'nothing'}", broken)
    assert broken.errors.counts == {"source": 1} and broken.exit_code == 2


def test_a_secret_kept_over_many_commits_is_reported_once(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    secret = mint("jit_")
    (repo / "app.env").write_text(f"TOKEN={secret}\n")
    git_repo("add", ".")
    git_repo("commit", "-q", "-m", "introduce")
    introduced = git_repo("rev-parse", "HEAD").strip()
    for number in range(3):  # later versions of the file still hold it
        (repo / "app.env").write_text((repo / "app.env").read_text() + f"DEBUG={number}\n")
        git_repo("commit", "-q", "-am", f"edit {number}")
    emitted: list[Finding] = []
    result = ScanResult()
    scan_once(f"git:{repo}", result, emitted)
    assert [(f.origin.commit, f.origin.path, f.line) for f in emitted] == [(introduced, "app.env", 1)]
    assert result.findings == 1 and result.files == 4


def test_jitsec_scan_accepts_git_addresses_beside_paths(tmp_path: Path, git_repo) -> None:
    repo = tmp_path / "repo"
    (repo / "old.env").write_text(f"TOKEN={mint('jit_')}\n")
    git_repo("add", ".")
    git_repo("commit", "-q", "-m", "leak")
    plain = tmp_path / "plain.txt"
    plain.write_text("nothing\n")
    env = {**os.environ, "JITSEC_FINGERPRINT_KEY": "66" * 32}
    result = subprocess.run(["jitsec", "scan", "-f", "jsonl", f"git:{repo}", str(plain)], capture_output=True,
                            text=True, env=env, check=False)
    assert result.returncode == 1, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    paths = [row["path"].split(":", 1)[1] for row in rows if row["rule"] == "broker-engine-token"]
    assert paths == ["old.env"]


def test_the_progress_total_is_reached_with_binary_files_skipped(tmp_path: Path) -> None:
    """Tally counts what was scanned and the walk report what was passed over: together, the total
    a progress bar was given (it used to stop short by every skipped binary)."""
    from jitsec.pipeline.paths import plan, scan_paths  # noqa: PLC0415

    (tmp_path / "notes.txt").write_text("hello\n" * 5000)
    (tmp_path / "blob.bin").write_bytes(b"\x7fELF\x00\x01" + os.urandom(300_000))
    (tmp_path / "more.log").write_text("line\n" * 100)
    planned = plan([str(tmp_path)])
    moved: list[int] = []
    planned.report.passed_over = moved.append
    result = ScanResult()
    settings = PipelineSettings(rules=RuleSettings(packs=(PACK,), include_default=False, engine="python"))
    with build_pipeline(settings, tail=[Tally(result, moved.append)],
                        fingerprinter=Fingerprinter(b"f" * 32)) as pipeline:
        scan_paths(pipeline, planned, result, jobs=2)
    assert result.skipped_binary == 1
    assert sum(moved) == planned.total_bytes
