"""Regenerate the "Formats covered" section of docs/rules.md from the default packs.

    python scripts/rules_doc.py          # rewrite the section in place
    python scripts/rules_doc.py --check  # exit 1 when the page is out of date (the test suite runs this)
"""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "rules.md"
START = "## Formats covered\n"  # the section runs to the next "## " heading


def _confirmed_by(rule: dict) -> str:
    if rule.get("validator"):
        return f"checksum `{rule['validator']}`"
    parts = ["shape"]
    if rule.get("entropy"):
        parts.append(f"entropy ≥ {rule['entropy']:g}")
    if rule.get("judge"):
        parts.append(f"judge `{rule['judge']}`")
    return " + ".join(parts)


def section() -> str:
    packs = []
    for path in sorted((ROOT / "rules").glob("*.toml")):
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
        packs.append((path.name, raw["pack"], raw.get("rule", [])))
    total = sum(len(rules) for _, _, rules in packs)
    out = [START, "\n", f"{total} rules in {len(packs)} packs.\n"]
    for name, pack, rules in packs:
        out.append(f"\n**{pack['name']}** (`rules/{name}`): {pack.get('description', '').rstrip('.')}.\n\n")
        out.append("| rule | what | severity | confirmed by |\n|---|---|---|---|\n")
        for rule in rules:
            what = rule["description"].replace("|", "\\|")
            if rule.get("pairs_with"):
                partners = " / ".join(f"`{partner}`" for partner in rule["pairs_with"])
                lines = rule.get("pair_lines", 0)
                window = f"within {lines} lines" if lines else "same line"
                what += f"; beside {partners} ({window}), one finding"
            out.append(f"| `{rule['id']}` | {what} | {rule['severity']} | {_confirmed_by(rule)} |\n")
    out.append("\n")
    return "".join(out)


def main() -> int:
    page = PAGE.read_text(encoding="utf-8")
    before, _, rest = page.partition(START)
    _, heading, after = rest.partition("\n## ")
    updated = before + section() + heading.lstrip("\n") + after
    if "--check" in sys.argv:
        if updated != page:
            print("docs/rules.md is out of date: run python scripts/rules_doc.py", file=sys.stderr)
            return 1
        return 0
    PAGE.write_text(updated, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
