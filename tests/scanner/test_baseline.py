from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from jitsec.scanner.baseline import BaselineError, baseline_document, load_baseline, parse_baseline
from jitsec.scanner.engine import Scanner

from jitsec.kernel.records import FileOrigin

AWS = "AKIA2OGYBAH6STMMNXNN"


def test_jitsec_baseline_round_trip(hs_scanner: Scanner, tmp_path: Path) -> None:
    found = hs_scanner.scan_bytes(f"a={AWS}\nb={AWS}\n".encode(), FileOrigin("x.env"))
    document = baseline_document(found, hs_scanner.ruleset.digest)
    assert len(document["findings"]) == 1  # one entry per fingerprint
    assert AWS not in json.dumps(document)
    path = tmp_path / "b.json"
    path.write_text(json.dumps(document))
    baseline = load_baseline(path)
    assert all(baseline.accepts(f) for f in found)
    other = hs_scanner.scan_bytes(b"c=AKIAZZZZZZZZZZZZZZZ2", FileOrigin("x.env"))
    assert not baseline.accepts(other[0])


def test_detect_secrets_baseline_is_read_as_sha1(tmp_path: Path) -> None:
    sha1 = hashlib.sha1(AWS.encode(), usedforsecurity=False).hexdigest()
    document = {"version": "1.5.0", "plugins_used": [], "filters_used": [], "results": {
        "x.env": [{"type": "AWS Access Key", "filename": "x.env", "hashed_secret": sha1, "line_number": 1,
                   "is_verified": False}]}}
    baseline = parse_baseline(document)
    assert baseline.sha1 == frozenset({sha1}) and not baseline.fingerprints


def test_unknown_or_unreadable_baselines_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match="neither"):
        parse_baseline({"something": 1})
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(BaselineError, match="not JSON"):
        load_baseline(bad)
