"""Which commits a CI job should scan, read from the CI system's environment.

GitHub Actions: a ``pull_request`` event's base commit (``pull_request.base.sha`` in the event file
at ``$GITHUB_EVENT_PATH``), a ``push`` event's previous tip (``before``). GitLab CI: a merge request
pipeline's ``$CI_MERGE_REQUEST_DIFF_BASE_SHA``, a push's ``$CI_COMMIT_BEFORE_SHA``. A new branch
(all-zero previous tip) or any other event has no range: the caller scans the whole tree instead.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jitsec.connectors.sources.git_diff import ZERO_ID


@dataclass(frozen=True, slots=True)
class CiBase:
    """The commit a CI run's changes start from, and where that was read (for messages)."""

    commit: str
    found_in: str


def ci_base(env: Mapping[str, str]) -> CiBase | None:
    """The base commit of the push or merge request this CI run is for, or None when there is none."""
    if env.get("GITHUB_ACTIONS") == "true":
        return _github(env)
    if env.get("GITLAB_CI") == "true":
        for name in ("CI_MERGE_REQUEST_DIFF_BASE_SHA", "CI_COMMIT_BEFORE_SHA"):
            commit = env.get(name, "")
            if commit and not ZERO_ID.match(commit):
                return CiBase(commit, f"${name}")
    return None


def _github(env: Mapping[str, str]) -> CiBase | None:
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            event: Any = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(event, dict):
        return None
    pull = event.get("pull_request")
    base = pull.get("base") if isinstance(pull, dict) else None
    if isinstance(base, dict) and isinstance(base.get("sha"), str):
        return CiBase(base["sha"], "the pull_request event (base.sha)")
    before = event.get("before")
    if isinstance(before, str) and before and not ZERO_ID.match(before):
        return CiBase(before, "the push event (before)")
    return None
