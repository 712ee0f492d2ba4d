"""The commit behind a git finding, as every report format shows it (full in JSON and SARIF, short in
text), so that who wrote a leak and when is never lost on the way to a report."""

from __future__ import annotations

from datetime import UTC, datetime

from jitsec.kernel.records import GitOrigin, Origin

GitFields = dict[str, str]


def git_fields(origin: Origin) -> GitFields | None:
    """``commit`` (full id), ``path`` (inside the repository), ``author_name``, ``author_email``,
    ``author_date`` (ISO 8601 with the author's offset) and ``subject``; None for other origins."""
    if not isinstance(origin, GitOrigin) or not origin.commit:
        return None
    return {"commit": origin.commit, "path": origin.path, "author_name": origin.author_name,
            "author_email": origin.author_email, "author_date": origin.author_date,
            "subject": origin.subject}


def short_commit(fields: GitFields) -> str:
    """``1a2b3c4d5e6f by Name <email> on 2026-01-31``: what a one-line report has room for."""
    authorship = commit_author(fields)
    return f"{fields['commit'][:12]} {authorship}" if authorship else fields["commit"][:12]


def commit_author(fields: GitFields) -> str:
    """``by Name <email> on 2026-01-31`` (the day in the author's time zone), or what of it is known."""
    words = []
    name, email = fields["author_name"], fields["author_email"]
    if name or email:
        words.append("by " + " ".join(part for part in (name, f"<{email}>" if email else "") if part))
    if fields["author_date"]:
        words.append(f"on {fields['author_date'][:10]}")
    return " ".join(words)


def utc_timestamp(iso_date: str) -> str:
    """An ISO 8601 date with offset as RFC 3339 in UTC (``2026-01-31T12:00:00Z``); "" when empty or
    unreadable."""
    try:
        moment = datetime.fromisoformat(iso_date)
    except ValueError:
        return ""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
