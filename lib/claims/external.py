"""Other people's results on the papers' claims (data/external/audits.yaml), as the text of
the `audit` column of our claims tables: the paper's numbers, the audit's and ours side by
side. Only shown, never read by a rule.

    audit_texts("A-claims-expressivity", ["C2-copy", ...])  # {claim: cell}, checked
"""
from __future__ import annotations

from pathlib import Path

import yaml

from .rules import NO_AUDIT
from ..config import ROOT

AUDITS = ROOT / "data" / "external" / "audits.yaml"
ENTRY_KEYS = {"claim", "source", "their_id", "verdict", "measured", "numbers", "evidence", "text"}
# the claims tables with an audit column (paper B's have none: no audit of it is known)
TABLES = ("A-claims-expressivity", "A-claims-scale", "A-claims-theory")


class AuditError(ValueError):
    """audits.yaml is malformed or names a claim its table does not have (one line)."""


def load(path: str | Path = AUDITS) -> dict:
    """The parsed file, its structure checked, each fault in one line: tables among TABLES;
    every entry with the keys of ENTRY_KEYS, a source listed under `sources` (with a url)
    and a text without '|' (it would split the markdown table's cell)."""
    path = Path(path)
    data = yaml.safe_load(path.read_text()) or {}
    sources = data.get("sources") or {}
    for name, source in sources.items():
        if not str((source or {}).get("url", "")).startswith("https://"):
            raise AuditError(f"{path.name}: source {name!r} has no https url")
    for table, entries in (data.get("tables") or {}).items():
        if table not in TABLES:
            raise AuditError(f"{path.name}: unknown claims table {table!r} (known: {', '.join(TABLES)})")
        for i, e in enumerate(entries or []):
            where = f"{path.name}: {table} entry {i + 1} ({e.get('claim', '?')})"
            if set(e) != ENTRY_KEYS:
                raise AuditError(f"{where}: keys {sorted(set(e) ^ ENTRY_KEYS)} missing or unknown")
            if e["source"] not in sources:
                raise AuditError(f"{where}: source {e['source']!r} is not under `sources`")
            if "|" in str(e["text"]):
                raise AuditError(f"{where}: '|' in its text would split the markdown cell")
    return data


def audit_texts(table_id: str, claims, path: str | Path = AUDITS) -> dict[str, str]:
    """{claim: the audit cell} for one claims table, every claim of `claims` included:
    'source: finding (url)', several sources joined by '; ', NO_AUDIT where no audit speaks.
    An entry for a claim the table does not have fails here, in one line: a renamed claim
    must not lose its audit silently."""
    path = Path(path)
    claims = list(claims)
    cells = {c: [] for c in claims}
    data = load(path)
    for e in (data.get("tables") or {}).get(table_id) or []:
        if e["claim"] not in cells:
            raise AuditError(f"{path.name}: unknown claim id {e['claim']!r} under {table_id} "
                             f"(its claims: {', '.join(claims)})")
        url = data["sources"][e["source"]]["url"].removeprefix("https://")
        cells[e["claim"]].append(f"{e['source']}: {' '.join(str(e['text']).split())} ({url})")
    return {c: "; ".join(texts) or NO_AUDIT for c, texts in cells.items()}


__all__ = ["AUDITS", "AuditError", "TABLES", "audit_texts", "load"]
