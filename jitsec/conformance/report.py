"""The report in three forms: Markdown (for people and pull requests), one self-contained HTML page
(inline style, no scripts, no external resources) and JSON (for machines and CI).

``write_reports`` scrubs every rendering against the secrets of the run before it touches the disk:
the records hold previews only by construction, and this is the second lock on that door.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from jitsec.conformance.model import ConformanceResult, Report
from jitsec.kernel.redaction import scrub

NAMES = {"markdown": "conformance.md", "html": "conformance.html", "json": "conformance.json"}


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _seconds(value: float | None) -> str:
    return "" if value is None else f"{value:.3f} s"


def to_json(report: Report) -> str:
    return json.dumps(report.to_dict(), indent=2, sort_keys=True) + "\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(report: Report) -> str:
    verdict = "PASS" if report.passed else "FAIL"
    out = [
        "# AG-304 conformance report",
        "",
        f"**{verdict}** · score **{report.score:g}/100** · maturity **{report.maturity.level}** · "
        f"broker `{report.broker_url}` · {_when(report.started_at)} "
        f"({report.finished_at - report.started_at:.1f} s)",
        "",
        "| test | title | requirement | outcome | checks | time |",
        "|---|---|---|---|---|---|",
    ]
    for r in report.results:
        passed = sum(c.passed for c in r.checks)
        out.append(
            f"| {r.test_id} | {_cell(r.title)} | {r.requirement} | **{r.outcome.value}** | "
            f"{passed}/{len(r.checks)} | {r.duration_seconds:.1f} s |"
        )
    out += ["", "## Maturity (section 6)", "", f"Level reached: **{report.maturity.level}**", ""]
    out += [f"- {_cell(reason)}" for reason in report.maturity.reasons]
    if report.maturity.unverified:
        out += ["", "Not verifiable by this suite:", ""]
        out += [f"- {_cell(item)}" for item in report.maturity.unverified]
    if report.suite_notes:
        out += ["", "## Audit", ""] + [f"- {_cell(note)}" for note in report.suite_notes]
    for r in report.results:
        out += ["", *_markdown_result(r)]
    out += ["", "## Settings", "", "| setting | value |", "|---|---|"]
    out += [f"| {_cell(k)} | {_cell(v)} |" for k, v in report.settings]
    return "\n".join(out) + "\n"


def _markdown_result(r: ConformanceResult) -> list[str]:
    out = [f"## {r.test_id} {r.title} — {r.outcome.value}", "", f"Requirement {r.requirement}.", ""]
    if r.error:
        out += [f"**Error:** {_cell(r.error)}", ""]
    out += ["| check | result | measured | limit | detail |", "|---|---|---|---|---|"]
    for c in r.checks:
        out.append(
            f"| {_cell(c.name)} | {'pass' if c.passed else '**FAIL**'} | {_seconds(c.measured_seconds)} | "
            f"{_seconds(c.limit_seconds)} | {_cell(c.detail)} |"
        )
    if r.searched:
        out += ["", "Searched:", "", "| where | files | bytes | method | hits |", "|---|---|---|---|---|"]
        out += [
            f"| {_cell(s.target)} | {s.files} | {s.bytes} | {_cell(s.method)} | "
            f"{_cell('; '.join(s.hits) or 'none')} |"
            for s in r.searched
        ]
    if r.facts:
        out += ["", "Facts: " + ", ".join(f"{k} = {v}" for k, v in r.facts)]
    if r.notes:
        out += ["", *[f"- {_cell(n)}" for n in r.notes]]
    if r.audit:
        out += [
            "",
            "Audit excerpt:",
            "",
            "| seq | time | kind | agent | task | lease | engine | scopes | detail |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        out += [
            f"| {a.seq} | {_when(a.at)} | {a.kind} | {_cell(a.agent)} | {a.task_id} | {a.lease_id} | "
            f"{a.engine} | {_cell(', '.join(a.scopes))} | {_cell(a.detail)} |"
            for a in r.audit
        ]
    return out


_STYLE = """
body{font:14px/1.45 system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:.6em 0;width:100%}td,th{border:1px solid #ccc;padding:.25em .5em;
text-align:left;vertical-align:top}th{background:#f3f3f3}.passed{color:#11703a;font-weight:600}
.failed,.error,.fail{color:#b00020;font-weight:600}code{background:#f3f3f3;padding:0 .2em}
details{margin:.3em 0 1em}summary{cursor:pointer;font-weight:600}.badge{font-size:1.2em}
"""


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def to_html(report: Report) -> str:
    verdict = "PASS" if report.passed else "FAIL"
    summary = _table(
        ["test", "title", "requirement", "outcome", "checks", "time"],
        [
            [
                _e(r.test_id),
                _e(r.title),
                _e(r.requirement),
                f'<span class="{r.outcome.value}">{_e(r.outcome.value)}</span>',
                f"{sum(c.passed for c in r.checks)}/{len(r.checks)}",
                f"{r.duration_seconds:.1f} s",
            ]
            for r in report.results
        ],
    )
    parts = [
        '<!doctype html><html lang="en"><head><meta charset="utf-8">',
        "<title>AG-304 conformance report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>AG-304 conformance report</h1>",
        f'<p class="badge"><span class="{"passed" if report.passed else "failed"}">{verdict}</span> · '
        f"score <b>{report.score:g}/100</b> · maturity <b>{_e(report.maturity.level)}</b></p>",
        f"<p>broker <code>{_e(report.broker_url)}</code> · {_e(_when(report.started_at))} · "
        f"{report.finished_at - report.started_at:.1f} s</p>",
        summary,
        "<h2>Maturity (section 6)</h2><ul>",
        *[f"<li>{_e(reason)}</li>" for reason in report.maturity.reasons],
        "</ul>",
    ]
    if report.maturity.unverified:
        parts += [
            "<p>Not verifiable by this suite:</p><ul>",
            *[f"<li>{_e(item)}</li>" for item in report.maturity.unverified],
            "</ul>",
        ]
    if report.suite_notes:
        parts += ["<h2>Audit</h2><ul>", *[f"<li>{_e(n)}</li>" for n in report.suite_notes], "</ul>"]
    for r in report.results:
        parts.append(_html_result(r))
    parts += [
        "<h2>Settings</h2>",
        _table(["setting", "value"], [[_e(k), _e(v)] for k, v in report.settings]),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _html_result(r: ConformanceResult) -> str:
    parts = [
        f"<h2>{_e(r.test_id)} {_e(r.title)} — "
        f'<span class="{r.outcome.value}">{_e(r.outcome.value)}</span></h2>',
        f"<p>Requirement {_e(r.requirement)}.</p>",
    ]
    if r.error:
        parts.append(f'<p class="error">Error: {_e(r.error)}</p>')
    parts.append(
        _table(
            ["check", "result", "measured", "limit", "detail"],
            [
                [
                    _e(c.name),
                    '<span class="passed">pass</span>' if c.passed else '<span class="fail">FAIL</span>',
                    _e(_seconds(c.measured_seconds)),
                    _e(_seconds(c.limit_seconds)),
                    _e(c.detail),
                ]
                for c in r.checks
            ],
        )
    )
    if r.searched:
        parts.append(
            "<p>Searched:</p>"
            + _table(
                ["where", "files", "bytes", "method", "hits"],
                [
                    [_e(s.target), str(s.files), str(s.bytes), _e(s.method), _e("; ".join(s.hits) or "none")]
                    for s in r.searched
                ],
            )
        )
    if r.facts:
        parts.append("<p>Facts: " + _e(", ".join(f"{k} = {v}" for k, v in r.facts)) + "</p>")
    if r.notes:
        parts.append("<ul>" + "".join(f"<li>{_e(n)}</li>" for n in r.notes) + "</ul>")
    if r.audit:
        parts.append(
            f"<details><summary>Audit excerpt ({len(r.audit)} records)</summary>"
            + _table(
                ["seq", "time", "kind", "agent", "task", "lease", "engine", "scopes", "detail"],
                [
                    [
                        str(a.seq),
                        _e(_when(a.at)),
                        _e(a.kind),
                        _e(a.agent),
                        _e(a.task_id),
                        _e(a.lease_id),
                        _e(a.engine),
                        _e(", ".join(a.scopes)),
                        _e(a.detail),
                    ]
                    for a in r.audit
                ],
            )
            + "</details>"
        )
    return "\n".join(parts)


def write_reports(report: Report, directory: Path, secrets: Sequence[str] = ()) -> dict[str, Path]:
    """Write the three renderings into ``directory``; returns their paths by format."""
    directory.mkdir(parents=True, exist_ok=True)
    held = list(secrets)
    paths = {}
    for kind, render in (("markdown", to_markdown), ("html", to_html), ("json", to_json)):
        text = scrub(render(report), held) if held else render(report)
        path = directory / NAMES[kind]
        temporary = path.with_suffix(path.suffix + ".tmp")
        temporary.write_text(text, encoding="utf-8")
        os.replace(temporary, path)
        paths[kind] = path
    return paths
