"""The environment of a process run as a developer or CI job would run it in a throwaway repository:
a home of its own, a git identity, no system git config, and none of the caller's jitsec, pre-commit
or CI variables (the tests set what they mean to)."""

from __future__ import annotations

import os
from pathlib import Path

SECRET_LINE = 'DB_PASSWORD = "Tr0ub4dor&3"\n'  # a weak password the default rules find
CI_VARIABLES = ("GITHUB_ACTIONS", "GITHUB_EVENT_PATH", "GITLAB_CI", "CI_MERGE_REQUEST_DIFF_BASE_SHA",
                "CI_COMMIT_BEFORE_SHA")


def clean_env(home: Path, **extra: str) -> dict[str, str]:
    inherited = {key: value for key, value in os.environ.items()
                 if not key.startswith(("JITSEC_", "PRE_COMMIT")) and key not in CI_VARIABLES}
    return {
        **inherited,
        "HOME": str(home), "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@example.org",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@example.org",
        **extra,
    }  # fmt: skip
