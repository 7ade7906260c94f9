"""Export the trace matrix as JSON, CSV, Markdown or one self-contained HTML file.

Every format carries the same rows: one per requirement with its design,
task, code and test links (``path:line``), its coverage flags and review state;
JSON also carries the summary and the gaps.  The HTML has no external assets
and a print stylesheet, so it can be mailed or printed as it is.
"""

from __future__ import annotations

import csv
import html
import io
import json
from typing import Any

from core.trace.matrix import COLUMNS

FORMATS = ("json", "csv", "md", "html")
CSV_FIELDS = [
    "id", "title", "priority", "status", "path", "line",
    "design", "tasks", "code", "tests",
    "has_design", "has_tasks", "has_code", "has_tests", "deep_complete", "suspect", "reviewed",
]


def _cell(links: list[dict[str, Any]], column: str) -> list[str]:
    out = []
    for lk in links:
        if lk["state"] in ("rejected", "suggested"):
            continue
        if column in ("design", "tasks"):
            out.append(lk["target"])
        else:
            out.append(f"{lk['path']}:{lk['line']}" if lk["line"] else lk["path"])
    return sorted(dict.fromkeys(out))


def rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Flat rows (lists of link labels per column) shared by CSV, Markdown and HTML."""
    out = []
    for r in report["requirements"]:
        row: dict[str, Any] = {k: r[k] for k in ("id", "title", "priority", "status", "path", "line")}
        for c in COLUMNS:
            row[c] = _cell(r["links"][c], c)
            row[f"has_{c}"] = bool(r["shallow"][c])
        row["deep_complete"] = all(r["deep"].values())
        row["suspect"] = r["suspect"]
        row["reviewed"] = r["reviewed"]
        out.append(row)
    return out


def to_json(report: dict[str, Any]) -> str:
    return json.dumps(report, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def to_csv(report: dict[str, Any]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=CSV_FIELDS, lineterminator="\n")
    w.writeheader()
    for row in rows(report):
        w.writerow(
            {
                **{k: row[k] if row[k] is not None else "" for k in ("id", "title", "priority", "status", "path", "line")},
                **{c: "; ".join(row[c]) for c in COLUMNS},
                **{k: "yes" if row[k] else "no" for k in CSV_FIELDS[10:]},
            }
        )
    return buf.getvalue()


def _md_escape(s: str) -> str:
    return s.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def _summary_lines(s: dict[str, Any]) -> list[tuple[str, str]]:
    cols = s["columns"]
    return [
        ("Requirements", str(s["requirements"])),
        *[(c.capitalize(), f"{cols[c]['covered']}/{s['requirements']} ({cols[c]['percent']}%)") for c in COLUMNS],
        ("Overall", f"{s['overall']}% (grade {s['grade']})"),
        ("Deep", f"{s['deep']['overall']}% (grade {s['deep']['grade']})"),
        ("Suspect", str(s["suspect"])),
    ]


def to_markdown(report: dict[str, Any]) -> str:
    s = report["summary"]
    out = ["# Traceability matrix", "", f"Repository: `{report['root']}`", "", "| Metric | Value |", "| --- | --- |"]
    out += [f"| {k} | {v} |" for k, v in _summary_lines(s)]
    out += ["", "| ID | Title | Priority | Status | Design | Tasks | Code | Tests | Suspect |", "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in rows(report):
        cells = [row["id"], row["title"], row["priority"] or "", row["status"] or ""]
        cells += ["<br>".join(row[c]) if row[c] else "—" for c in COLUMNS]
        cells.append("yes" if row["suspect"] else "no")
        out.append("| " + " | ".join(_md_escape(str(c)) for c in cells) + " |")
    gaps = report["gaps"]
    if gaps["dangling"]:
        out += ["", "## Dangling references", "", "| ID | Location | From |", "| --- | --- | --- |"]
        out += [f"| {_md_escape(d['id'])} | {_md_escape(d['path'])}:{d['line']} | {d['from']} |" for d in gaps["dangling"]]
    if gaps["orphans"]:
        out += ["", "## Orphans", "", "| Kind | ID | Location |", "| --- | --- | --- |"]
        out += [f"| {o['kind']} | {_md_escape(o['id'])} | {_md_escape(o['path'])}:{o['line']} |" for o in gaps["orphans"]]
    return "\n".join(out) + "\n"


_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#111}
h1{font-size:1.4em}table{border-collapse:collapse;width:100%;margin:1em 0}
th,td{border:1px solid #999;padding:4px 6px;vertical-align:top;text-align:left}
th{background:#eee}td.ok::before{content:"\\2714 "}td.gap{background:#fde8e8}td.gap::before{content:"\\2718 missing"}
code{font-size:.9em;word-break:break-all}.suspect{font-weight:bold}
@media print{body{margin:0;font-size:10pt}th{background:none}td.gap{background:none}
tr{page-break-inside:avoid}thead{display:table-header-group}}
"""


def to_html(report: dict[str, Any]) -> str:
    e = html.escape
    s = report["summary"]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8"><title>Traceability matrix</title>',
        f"<style>{_CSS}</style></head><body>",
        "<h1>Traceability matrix</h1>",
        f"<p>Repository: <code>{e(report['root'])}</code></p>",
        '<table id="summary"><thead><tr><th>Metric</th><th>Value</th></tr></thead><tbody>',
    ]
    parts += [f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in _summary_lines(s)]
    parts += [
        "</tbody></table>",
        '<table id="matrix"><thead><tr><th>ID</th><th>Title</th><th>Priority</th><th>Status</th>'
        "<th>Design</th><th>Tasks</th><th>Code</th><th>Tests</th><th>Suspect</th></tr></thead><tbody>",
    ]
    for row in rows(report):
        cells = [f"<td>{e(str(row[k] or ''))}</td>" for k in ("id", "title", "priority", "status")]
        for c in COLUMNS:
            if row[c]:
                cells.append('<td class="ok">' + "<br>".join(f"<code>{e(x)}</code>" for x in row[c]) + "</td>")
            else:
                cells.append('<td class="gap"></td>')
        cells.append('<td class="suspect">yes</td>' if row["suspect"] else "<td>no</td>")
        parts.append("<tr>" + "".join(cells) + "</tr>")
    parts.append("</tbody></table>")
    d = report["gaps"]["dangling"]
    if d:
        parts.append('<h2>Dangling references</h2><table id="dangling"><thead><tr><th>ID</th><th>Location</th><th>From</th></tr></thead><tbody>')
        parts += [f"<tr><td>{e(x['id'])}</td><td><code>{e(x['path'])}:{x['line']}</code></td><td>{e(x['from'])}</td></tr>" for x in d]
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render(report: dict[str, Any], fmt: str) -> str:
    """The report in ``fmt`` (json, csv, md, html)."""
    from core.errors import BadRequest

    fn = {"json": to_json, "csv": to_csv, "md": to_markdown, "html": to_html}.get(fmt)
    if fn is None:
        raise BadRequest(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}.", field="format")
    return fn(report)
