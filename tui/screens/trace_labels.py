"""The Trace screen's words: requirement, column and link labels, the summary line, file previews.

Pure functions of the engine's trace report, apart from the screen so they can be read and
tested without Textual.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from rich.text import Text

COLUMNS = ("design", "tasks", "code", "tests")
PREVIEW_CONTEXT = 3  # lines shown around a linked line



def req_state(row: dict[str, Any]) -> tuple[str, str]:
    """(symbol, word) of a requirement's coverage."""
    covered = sum(1 for c in COLUMNS if row["shallow"][c])
    if covered == len(COLUMNS):
        return "✔", "covered"
    return ("◐", "partial") if covered else ("✘", "uncovered")


COUNTING = ("active", "accepted", "suspect")


def live_links(row: dict[str, Any], column: str) -> list[dict[str, Any]]:
    """The links shown in the tree: everything but rejected ones (suggestions show, marked)."""
    return [lk for lk in row["links"][column] if lk["state"] != "rejected"]


def counting_links(row: dict[str, Any], column: str) -> list[dict[str, Any]]:
    return [lk for lk in row["links"][column] if lk["state"] in COUNTING]


def req_label(row: dict[str, Any]) -> Text:
    """State first, then id, the missing columns and the suspect mark, the title last.

    At 80 columns the tree cuts the end of a line: what matters must not be there.
    """
    sym, word = req_state(row)
    missing = [c for c in COLUMNS if not row["shallow"][c]]
    gap = f" (no {', '.join(missing)})" if missing and len(missing) < len(COLUMNS) else ""
    mark = f"⚠{sym} " if row["suspect"] else f"{sym} "
    suspect = " ⚠ suspect" if row["suspect"] else ""
    return Text.assemble(mark, (row["id"], "bold"), f" {word}{gap}{suspect} — {row['title']}")


def column_label(row: dict[str, Any], column: str) -> str:
    links = counting_links(row, column)
    suggested = sum(1 for lk in row["links"][column] if lk["state"] == "suggested")
    more = f" + {suggested} suggested" if suggested else ""
    if row["shallow"][column]:
        return f"{column.capitalize()} ✔ {len(links)}{more}"
    if links:
        return f"{column.capitalize()} ~ {len(links)} via tasks/ADRs only{more}"
    return f"{column.capitalize()} ✘ none{more}"


def link_label(column: str, lk: dict[str, Any]) -> str:
    where = f"{lk['path']}:{lk['line']}" if lk.get("line") else lk["path"]
    state = "" if lk["state"] == "active" else f" [{lk['state']}]"
    if column in ("design", "tasks"):
        extra = f" ({lk['status']})" if lk.get("status") else ""
        return f"{lk['target']} {lk.get('title') or ''}{extra} — {where}{state}"
    via = f" via {lk['via']}" if lk.get("via") and not lk["via"].startswith("REQ") else ""
    ctx = f" ({lk['context']})" if lk.get("context") else ""
    return f"{where}{ctx}{via}{state}"


def suggestions_hint(report: Mapping[str, Any]) -> str:
    """Where suggested links stand (docs/trace.md#suggested-links); empty when the report does not say."""
    s = report.get("suggestions")
    if not s:
        return ""
    if s["state"] == "updating":
        return "  · suggestions updating (r re-scans)"
    if s["state"] == "none":
        return "  · no code index: musubi index for suggestions"
    return f"  · {s['count']} suggested" if s["count"] else ""


def summary_text(report: Mapping[str, Any]) -> str:
    s = report["summary"]
    cols = " · ".join(f"{c} {s['columns'][c]['percent']:.0f}%" for c in COLUMNS)
    suspect = f" · ⚠ {s['suspect']} suspect" if s.get("suspect") else ""
    return (f"{s['requirements']} requirements · {cols} · overall {s['overall']}% grade {s['grade']}"
            f" · deep {s['deep']['overall']}% grade {s['deep']['grade']}{suspect}")


def read_preview(root: str, rel: str, line: int, context: int = PREVIEW_CONTEXT) -> str:
    """Lines around ``line`` of ``root/rel`` with numbers, the linked one marked; or why not."""
    if not rel or rel.startswith("/") or ".." in rel.split("/"):
        return "(no file to preview)"
    try:
        with open(os.path.join(root, rel), "rb") as f:
            data = f.read(2_000_000)
    except OSError as exc:
        return f"(cannot read {rel}: {exc.strerror})"
    lines = data.decode("utf-8", "replace").split("\n")
    if not line:
        line = 1
    lo, hi = max(1, line - context), min(len(lines), line + context)
    return "\n".join(f"{'▶' if n == line else ' '} {n:>5}  {lines[n - 1].rstrip(chr(13))}" for n in range(lo, hi + 1))


def component_of(rid: str) -> str:
    if ":" in rid:
        return rid.split(":", 1)[0]  # a Kiro / Spec Kit feature
    parts = rid.split("-")
    return parts[1] if len(parts) > 2 else "-"
