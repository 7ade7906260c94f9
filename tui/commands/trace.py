"""``musubi trace``: requirement → design → task → code → test links, coverage, gaps, impact.

Which repository: ``PATH`` (``musubi trace PATH``, or ``--path`` on a subcommand),
else the repository around the current directory (found by walking up to a
``.git``, ``musubi.toml``, ``.kiro`` or ``storage/specs``), else the registered
project of the current directory.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import click

from core.api import calls
from core.errors import EXIT_ERROR
from core.exports import write_export
from tui.output import (
    CliState,
    MusubiGroup,
    abspath,
    emit,
    example,
    fields,
    line,
    pass_state,
    table,
    warn,
    working_dir,
)

if TYPE_CHECKING:
    from core.api.responses import TraceGaps, TraceImpact, TraceRequirement

COLUMNS = ("design", "tasks", "code", "tests")


def repo_path(ctx: click.Context, path: str | None) -> str | None:
    """The ``path`` to send: explicit, else the repository around the cwd, else none (project of cwd)."""
    given = path or ctx.find_root().meta.get("trace.path")
    if given:
        if not os.path.isdir(given):
            raise click.BadParameter(f"{given} is not a directory; give the path of a repository.", param_hint="PATH")
        return abspath(given)
    from core.trace.root import find_repo_root

    root = find_repo_root(working_dir())
    return str(root) if root else None


class _PathGroup(MusubiGroup):
    """A group whose first argument may be a PATH instead of a subcommand (``musubi trace ~/src/shop``)."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            ctx.find_root().meta["trace.path"] = args[0]
            args = args[1:]
        return super().parse_args(ctx, args)


def _path_option(f: Any) -> Any:
    return click.option("--path", "path", metavar="PATH", type=click.Path(file_okay=False),
                        help="Repository to trace (default: the one around the current directory).")(f)


def _mark(ok: bool, n: int) -> str:
    # State never by colour alone: a symbol and a word/count.
    return f"✔ {n}" if ok else ("✘ none" if n == 0 else f"~ {n} via")


def summary_line(s: dict[str, Any]) -> str:
    cols = " · ".join(f"{c} {s['columns'][c]['percent']:.0f}%" for c in COLUMNS)
    extra = f" · {s['suspect']} suspect" if s.get("suspect") else ""
    return (f"{s['requirements']} requirements · {cols} · overall {s['overall']}% (grade {s['grade']}) · "
            f"deep {s['deep']['overall']}% ({s['deep']['grade']}){extra}")


def _empty_message(d: Mapping[str, Any]) -> str:
    """Why there is no requirement: spec files that hold none (what to write), or no spec files (where we looked)."""
    diag = d.get("diagnosis")
    if diag:
        return diag["message"]
    globs = (d.get("scan") or {}).get("config_globs")
    return "no spec files found (looked in storage/specs, .kiro/specs/<feature>/, specs/<feature>/" + (
        f" and {', '.join(globs)}" if globs else "") + "; more locations: musubi.toml [trace] requirements)."


def _layouts_line(scan: dict[str, Any]) -> None:
    lays = scan.get("layouts") or []
    if lays:
        line("layouts: " + "; ".join(f"{x['folder']} {x['layout']}" for x in lays[:8])
             + (f"; … {len(lays) - 8} more (--json)" if len(lays) > 8 else "")
             + (f" · active feature {scan['active_feature']}" if scan.get("active_feature") else ""))


def _state_word(r: Mapping[str, Any]) -> str:
    if r["suspect"]:
        return "⚠ suspect"
    return "reviewed" if r["reviewed"] else "-"


def _matrix_table(rep: Mapping[str, Any]) -> None:
    line(summary_line(rep["summary"]))
    rows = []
    for r in rep["requirements"]:
        cells = []
        for c in COLUMNS:
            links = [lk for lk in r["links"][c] if lk["state"] not in ("rejected", "suggested")]
            cells.append(_mark(r["shallow"][c], len(links)))
        rows.append((r["id"], r["priority"] or "-", r["status"] or "-", *cells, _state_word(r), r["title"]))
    table(("ID", "PRI", "STATUS", "DESIGN", "TASKS", "CODE", "TESTS", "REVIEW", "TITLE"), rows,
          empty=_empty_message(rep), wrap=("TITLE",))
    _layouts_line(rep.get("scan", {}))
    skipped = rep["scan"].get("skipped", 0)
    if skipped:
        warn(f"{skipped} file(s) skipped (binary, too large, symlinks); see --json for the list.")


@click.group("trace", cls=_PathGroup, invoke_without_command=True, epilog=example(
    "musubi trace                      # matrix of the repository around the current directory",
    "musubi trace ~/src/shop --json",
    "musubi trace show REQ-AUTH-001",
    "musubi trace check --min-coverage 80",
    "musubi trace export ~/src/shop --format html -o trace.html",
))
@pass_state
@click.pass_context
def cli_group(ctx: click.Context, state: CliState) -> None:
    """Traceability: requirement → design → task → code → test, coverage and gaps.

    Without a subcommand: the matrix of PATH (default: the repository around the
    current directory), with coverage per column and a grade (A ≥ 90 %, B ≥ 80,
    C ≥ 70, D ≥ 60, else F).
    """
    if ctx.invoked_subcommand is not None:
        return
    rep = state.client().call(calls.trace_report(repo_path(ctx, None)))
    emit(state, rep, _matrix_table)


@cli_group.command(epilog=example("musubi trace show REQ-AUTH-001", "musubi trace show REQ-AUTH-001 --json"))
@click.argument("req_id", metavar="REQ-ID")
@_path_option
@pass_state
@click.pass_context
def show(ctx: click.Context, state: CliState, req_id: str, path: str | None) -> None:
    """One requirement: its text, links (with file:line), coverage and lint findings."""
    d = state.client().call(calls.trace_requirement(req_id, repo_path(ctx, path)))

    def human(d: TraceRequirement) -> None:
        fields({**d, "where": f"{d['path']}:{d['line']}", "review": _state_word(d)},
               ["id", "title", "where", "priority", "status", "review", "statement"])
        for i, c in enumerate(d["criteria"], 1):
            line(f"  AC{i}. {c}")
        rows = [(c, lk["target"] if c in ("design", "tasks") else "", f"{lk['path']}:{lk['line']}",
                 lk["via"], lk["source"], lk["state"]) for c in COLUMNS for lk in d["links"][c]]
        table(("KIND", "TARGET", "LOCATION", "VIA", "SOURCE", "STATE"), rows, title="links", empty="no links")
        if d["findings"]:
            table(("LINE", "SEVERITY", "RULE", "MESSAGE"), [(f["line"], f["severity"], f["rule"], f["message"]) for f in d["findings"]],
                  title="lint", wrap=("MESSAGE",))

    emit(state, d, human)


@cli_group.command(epilog=example("musubi trace gaps", "musubi trace gaps --group", "musubi trace gaps --json"))
@click.argument("repo", metavar="[PATH]", required=False, type=click.Path(file_okay=False))
@click.option("--group", is_flag=True, help="Count dangling references per folder and file instead of listing each.")
@_path_option
@pass_state
@click.pass_context
def gaps(ctx: click.Context, state: CliState, repo: str | None, group: bool, path: str | None) -> None:
    """Requirements without design, tasks, code or tests; orphans; dangling references."""
    d = state.client().call(calls.trace_gaps(repo_path(ctx, path or repo)))

    def human(d: TraceGaps) -> None:
        if d["diagnosis"]:
            warn(d["diagnosis"]["message"])
        line(summary_line(d["summary"]))
        table(("ID", "MISSING", "WHERE", "TITLE"), [(r["id"], ", ".join(r["missing"]), f"{r['path']}:{r['line']}", r["title"]) for r in d["requirements"]],
              title="uncovered requirements", empty="none", wrap=("TITLE",))
        table(("KIND", "ID", "WHERE"), [(o["kind"], o["id"], f"{o['path']}:{o['line']}") for o in d["orphans"]],
              title="orphans (cite no requirement)", empty="none")
        if group:
            table(("FOLDER", "COUNT", "IDS"), [(g["path"], g["count"], ", ".join(g["ids"])) for g in d["dangling_by_folder"]],
                  title="dangling references by folder", empty="none")
            table(("FILE", "COUNT", "IDS"), [(g["path"], g["count"], ", ".join(g["ids"])) for g in d["dangling_by_file"]],
                  title="dangling references by file", empty="none")
        else:
            table(("ID", "WHERE", "FROM"), [(x["id"], f"{x['path']}:{x['line']}", x["from"]) for x in d["dangling"]],
                  title="dangling references (ID defined nowhere)", empty="none")
        if d.get("ambiguous"):
            warn(f"{len(d['ambiguous'])} bare citation(s) could mean several features (e.g. {d['ambiguous'][0]['id']} "
                 f"in {d['ambiguous'][0]['path']}:{d['ambiguous'][0]['line']}); add a 'Feature: <name>' comment "
                 "to the file (see --json 'ambiguous').")
        table(("ID", "WHERE", "FIRST"), [(x["id"], f"{x['path']}:{x['line']}", x["first"]) for x in d["duplicates"]],
              title="duplicate IDs", empty="none")

    emit(state, d, human)


@cli_group.command(epilog=example("musubi trace check --min-coverage 80", "musubi trace check --min-coverage 60 --deep --json"))
@click.option("--min-coverage", type=click.FloatRange(0, 100), required=True, metavar="N",
              help="Minimum overall coverage in percent; exit 1 below it.")
@click.option("--deep", is_flag=True, help="Check deep coverage (every task implemented and tested) instead of shallow.")
@click.argument("repo", metavar="[PATH]", required=False, type=click.Path(file_okay=False))
@_path_option
@pass_state
@click.pass_context
def check(ctx: click.Context, state: CliState, min_coverage: float, deep: bool, repo: str | None, path: str | None) -> None:
    """For CI: exit 1 when overall coverage is below N percent, or when no requirement is recognised."""
    d = state.client().call(calls.trace_report(repo_path(ctx, path or repo), view="summary"))
    s = d["summary"]
    got = s["deep"]["overall"] if deep else s["overall"]
    # Nothing traced is never a pass: spec files holding no recognised requirement fail with the reason.
    ok = got >= min_coverage and s["requirements"] > 0
    reason = None if s["requirements"] else (d.get("diagnosis") or {}).get("message") or _empty_message(d)
    result = {"ok": ok, "coverage": got, "min_coverage": min_coverage, "mode": "deep" if deep else "shallow",
              "reason": reason, **d}
    emit(state, result, lambda r: line(
        f"FAILED: {reason}" if reason else
        f"{'ok' if ok else 'FAILED'}: {r['mode']} coverage {got}% {'≥' if ok else '<'} {min_coverage}% — {summary_line(s)}"))
    if not ok:
        ctx.exit(EXIT_ERROR)


@cli_group.command(epilog=example("musubi trace export --format html -o trace.html", "musubi trace export --format csv > trace.csv"))
@click.option("--format", "fmt", type=click.Choice(("json", "csv", "md", "html")), required=True, help="File format.")
@click.option("-o", "--output", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write to FILE (default: stdout); never inside MUSUBI_HOME but for its exports/ folder, "
                   "never through a symbolic link.")
@click.option("--force", is_flag=True, help="Replace FILE if it exists.")
@click.argument("repo", metavar="[PATH]", required=False, type=click.Path(file_okay=False))
@_path_option
@pass_state
@click.pass_context
def export(ctx: click.Context, state: CliState, fmt: str, output: str | None, force: bool, repo: str | None,
           path: str | None) -> None:
    """Export the matrix of PATH (default: the repository around the current directory) as JSON, CSV,
    Markdown or one self-contained HTML file (prints well)."""
    if force and output is None:
        raise click.UsageError("--force only applies with -o FILE.")
    d = state.client().call(calls.trace_export(fmt, repo_path(ctx, path or repo)))
    content = d["content"]
    if output is None:
        if state.json and fmt != "json":
            emit(state, d, lambda _d: None)
        else:
            click.echo(content, nl=False)
        return
    target = write_export(output, state.paths().home, content, force=force)
    emit(state, {"format": fmt, "path": target, "bytes": len(content.encode())},
         lambda r: line(f"wrote {r['format']} to {r['path']} ({r['bytes']} bytes)."))


@cli_group.command(epilog=example("musubi trace impact REQ-AUTH-001", "musubi trace impact REQ-AUTH-001 --json"))
@click.argument("req_id", metavar="REQ-ID")
@_path_option
@pass_state
@click.pass_context
def impact(ctx: click.Context, state: CliState, req_id: str, path: str | None) -> None:
    """Everything downstream of a requirement: the design, tasks, code and tests to revisit when it changes."""
    d = state.client().call(calls.trace_impact(req_id, repo_path(ctx, path)))

    def human(d: TraceImpact) -> None:
        line(f"{d['id']}: {d['title']}" + ("  ⚠ suspect: changed since its last review" if d["suspect"] else ""))
        columns: dict[str, Any] = dict(d)
        rows = [(k, i["target"] if k in ("design", "tasks") else "", f"{i['path']}:{i['line']}", i["via"])
                for k in COLUMNS for i in columns[k]]
        rows += [("requirement", r["id"], f"{r['path']}:{r['line']}", d["id"]) for r in d["requirements"]]
        table(("KIND", "TARGET", "LOCATION", "VIA"), rows, empty="nothing downstream")
        line(f"{len(d['files'])} file(s) to revisit.")

    emit(state, d, human)


@cli_group.command(epilog=example("musubi trace review REQ-AUTH-001"))
@click.argument("req_id", metavar="REQ-ID")
@_path_option
@pass_state
@click.pass_context
def review(ctx: click.Context, state: CliState, req_id: str, path: str | None) -> None:
    """Mark a requirement reviewed as it reads now: its links stop being suspect (kept in links.yml)."""
    d = state.client().call(calls.trace_review(req_id, repo_path(ctx, path)))
    emit(state, d, lambda d: line(
        f"reviewed {d['id']} (fingerprint {d['fingerprint']})" + ("; its links are no longer suspect" if d["was_suspect"] else "")
        + f". Commit {d['file']} to share it."))


@cli_group.command(epilog=example("musubi trace accept REQ-AUTH-001 src/auth/login.py:42",
                                  "musubi trace accept REQ-AUTH-001 tests/test_login.py --kind test",
                                  "musubi trace accept REQ-AUTH-001 TASK-AUTH-003 --kind task --reject"))
@click.argument("req_id", metavar="REQ-ID")
@click.argument("target", metavar="TARGET[:LINE]")
@click.option("--kind", type=click.Choice(("code", "test", "design", "task")), default="code", show_default=True)
@click.option("--reject", is_flag=True, help="Record the link as rejected (e.g. a wrong suggestion).")
@_path_option
@pass_state
@click.pass_context
def accept(ctx: click.Context, state: CliState, req_id: str, target: str, kind: str, reject: bool, path: str | None) -> None:
    """Accept (or --reject) a link from a requirement to a file[:line], task or design element."""
    name, _, ln = target.rpartition(":")
    line_no: int | None = None
    if name and ln.isdigit():
        target, line_no = name, int(ln)
    d = state.client().call(calls.trace_link(
        req_id, kind, target, path=repo_path(ctx, path), line=line_no, state="rejected" if reject else "accepted",
        source="manual",
    ))
    emit(state, d, lambda d: line(f"{d['state']} {d['kind']} link {d['requirement']} → {d['target']}"
                                  + (f":{d['line']}" if d.get("line") else "") + f" (in {d['file']})."))
