"""What the Search screen (mode 3) says: the index status line, result rows, the job panel, the
preview of a hit with its surrounding lines, and the empty states.

Plain functions over the engine's answers (``core.api.responses`` shapes), so they are tested
without an app.  State is always a symbol and a word, never colour alone; the preview marks the
hit's own lines with ``▶`` in the gutter, so it reads the same at 16 colours and under NO_COLOR.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.text import Text

from tui.widgets.format import short_ts

if TYPE_CHECKING:
    from core.api.responses import IndexStatus, Job, SearchHit

CONTEXT_LINES = 3  # lines shown above and below a hit in the preview
MAX_PREVIEW_BYTES = 2_000_000  # a bigger file is previewed from the indexed snippet
FINISHED = frozenset({"done", "failed", "cancelled", "interrupted"})

INDEX_STATES: dict[str, tuple[str, str]] = {
    "none": ("○", "not indexed"),
    "indexing": ("↻", "indexing"),
    "ready": ("●", "ready"),
    "stale": ("◐", "stale (files changed; i re-indexes)"),
    "failed": ("✘", "last index failed (i retries)"),
}
JOB_STATES: dict[str, tuple[str, str]] = {
    "queued": ("…", "queued"),
    "running": ("↻", "indexing"),
    "cancelling": ("■", "cancelling"),
    "done": ("✔", "indexed"),
    "failed": ("✘", "index failed"),
    "cancelled": ("■", "cancelled"),
    "interrupted": ("⚠", "interrupted (resumes when the engine restarts)"),
}


def status_line(st: IndexStatus | None, *, waiting: str = "waiting for the engine…") -> str:
    """One line: state, project, files, chunks, dense coverage, model, last update."""
    if st is None:
        return f"Index: {waiting}"
    if not st.get("project"):
        return "Index: ✘ no project for this folder"
    sym, word = INDEX_STATES.get(st["state"], ("?", st["state"]))
    parts = [f"{sym} {word}", str(st["project"])]
    if st["state"] != "none":
        parts += [f"{st['files']:,} files", f"{st['chunks']:,} chunks", f"dense {st['dense_coverage'] * 100:.0f}%"]
        if st.get("model"):
            parts.append(short_model(str(st["model"])))
        if st.get("updated_at"):
            parts.append(f"updated {short_ts(st['updated_at'])[:16]}")
    return "Index: " + " · ".join(parts)


def short_model(model: str, width: int = 30) -> str:
    """The model's name without its path and with a long content hash cut (``name@abc123``)."""
    name = model.rsplit("/", 1)[-1]
    if "@" in name:
        base, digest = name.split("@", 1)
        return f"{clip_right(base, width - 7)}@{digest[:6]}"
    return clip_right(name, width)


def clip_left(text: str, width: int) -> str:
    """``text`` cut from the left to ``width`` (a path's end is the part that tells files apart)."""
    return text if len(text) <= width else "…" + text[-(width - 1):]


def clip_right(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def location(hit: SearchHit) -> str:
    """``path:start-end`` (one line: ``path:start``)."""
    lines = f"{hit['start_line']}" if hit["start_line"] == hit["end_line"] else f"{hit['start_line']}-{hit['end_line']}"
    return f"{hit['path']}:{lines}"


def result_rows(hits: list[SearchHit], *, wide: bool, width: int) -> list[tuple[str, ...]]:
    """Results-table rows fitted to ``width`` columns: location, symbol, score (and language when wide).

    The symbol gets what it needs up to a third of the width; the location the rest, cut
    from the left (a path's end tells files apart).
    """
    lang_w = max((len(h["language"]) for h in hits), default=4) if wide else 0
    fixed = 4 + 2 * (4 if wide else 3) + (lang_w if wide else 0)  # score, cell padding, language
    sym_w = min(max((len(h["symbol"] or "—") for h in hits), default=6), max(12, width // 3))
    loc_w = max(16, width - fixed - sym_w - 1)
    rows: list[tuple[str, ...]] = []
    for hit in hits:
        loc = clip_left(location(hit), loc_w)
        symbol = clip_right(hit["symbol"] or "—", sym_w)
        score = f"{hit['score']:.2f}"
        rows.append((loc, symbol, hit["language"], score) if wide else (loc, symbol, score))
    return rows


def job_line(job: Job, width: int = 24) -> str:
    """The index job in one line: state word, a text bar, done/total, rate and ETA (or the error)."""
    sym, word = JOB_STATES.get(job["state"], ("?", job["state"]))
    progress = job["progress"]
    unit = progress.get("unit") or "items"
    head = f"{sym} {word}"
    if job["state"] == "failed":
        return f"{head}: {job.get('error') or 'no reason given'} — i tries again"
    total, done = progress.get("total"), progress["done"]
    if total:
        frac = min(1.0, max(0.0, done / total))
        filled = round(frac * width)
        bar = "█" * filled + "░" * (width - filled)
        count = f"{done:,}/{total:,} {unit} {frac * 100:.0f}%"
        line = f"{head} [{bar}] {count}"
    else:
        line = f"{head} {done:,} {unit}"
    note = progress.get("message")
    if note:  # waiting for something it names (an embedder switch): that, not "0 steps"
        line = f"{line} · {note}" if total or done else f"{head} · {note}"
    if job["state"] == "running":
        rate = progress.get("rate")
        if rate:
            line += f" · {rate:.0f}/s"
        eta = progress.get("eta_s")
        if eta is not None:
            line += f" · ETA {_duration(eta)}"
    return line


def _duration(seconds: float) -> str:
    s = max(0, round(seconds))
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


# -- empty states -----------------------------------------------------------------------------------

NO_PROJECT = (
    "No project here: search works on a registered project.\n\n"
    "• Register the repository: musubi project add PATH\n"
    "• Then start musubi inside it (musubi project list shows what is registered)."
)
NOT_INDEXED = (
    "This project is not indexed yet.\n\n"
    "• Press i here to index it (Esc first if you are in the query box),\n"
    "• or run in a shell: musubi index\n"
    "Keyword results appear at once; meaning-based results follow as embedding goes on."
)
PREVIEW_HINT = "The selected result shows here, its own lines marked ▶."
NO_ROUTE = "this engine has no code index (GET /v1/index/status not found): update musubi, then restart the engine."
WAITING = "Waiting for the engine… (ctrl+r reconnects; the status bar says why it is not connected)."


def type_to_search(project: str | None) -> str:
    where = f" in {project}" if project else ""
    return (f"Type a query to search the code{where}: words, identifiers or a question.\n\n"
            "Results come as you type. p narrows by path glob (src/**/*.py), l by language (python).")


def no_results(query: str, path: str, lang: str) -> str:
    filters = [f"path {path!r}" if path else "", f"language {lang!r}" if lang else ""]
    shown = " and ".join(f for f in filters if f)
    if shown:
        return f"No results for {query!r} within {shown}.\n\nRemove the filters: press x (Esc first in a box)."
    return f"No results for {query!r}.\n\nTry other words, an identifier, or a shorter query."


def in_words(exc: BaseException) -> str:
    """An engine failure as the screen shows it: a typed error's message, never a library's raw text."""
    from core.errors import EngineUnavailable, MusubiError

    if isinstance(exc, EngineUnavailable):
        return "the engine is not reachable; ctrl+r reconnects (F12 has the details)."
    if isinstance(exc, MusubiError):
        return exc.message
    return f"an unexpected {type(exc).__name__}; F12 has the details."


# -- preview ----------------------------------------------------------------------------------------


def read_lines(root: str | None, rel: str) -> list[str] | None:
    """The lines of ``root/rel``; None when there is no root, the path leaves it, or it cannot be read."""
    if not root:
        return None
    base = Path(root).resolve()
    target = (base / rel).resolve()
    if not target.is_relative_to(base):
        return None  # a path from the engine never leads outside the project
    try:
        if target.stat().st_size > MAX_PREVIEW_BYTES:
            return None
        return target.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return None


def _matches(lines: list[str], hit: SearchHit) -> bool:
    """Whether the file still holds the hit's lines (the first non-blank snippet line is where it was)."""
    if hit["end_line"] > len(lines) or hit["start_line"] < 1:
        return False
    first = next((s.strip() for s in hit["snippet"].splitlines() if s.strip()), "")
    window = [s.strip() for s in lines[hit["start_line"] - 1: hit["end_line"]]]
    return not first or first in window


def build_preview(root: str | None, hit: SearchHit, theme: str) -> tuple[Text, str]:
    """(highlighted lines with a gutter, note) for ``hit``: from the file with context, else the snippet.

    Runs in a thread worker (reading the file and loading pygments are not for the event loop).
    """
    lines = read_lines(root, hit["path"])
    start, end = hit["start_line"], hit["end_line"]
    if lines is not None and _matches(lines, hit):
        first = max(1, start - CONTEXT_LINES)
        last = min(len(lines), end + CONTEXT_LINES)
        code, note = lines[first - 1: last], f"{location(hit)} · lines {start}-{end} marked ▶"
    else:
        why = "file unreadable" if lines is None else "file changed since indexing"
        first, code = start, hit["snippet"].splitlines() or [""]
        note = f"{location(hit)} · {why}: the indexed snippet"
    return _gutter(_highlight("\n".join(code), hit, theme), first, start, end), note


def _highlight(code: str, hit: SearchHit, theme: str) -> list[Text]:
    from rich.syntax import Syntax  # pygments loads here, in the preview's thread

    lexer: Any = hit["language"] if hit["language"] not in ("", "text") else None
    if lexer is None:
        lexer = Syntax.guess_lexer(hit["path"], code)
    syntax = Syntax(code, lexer, theme=theme, background_color="default")
    text = syntax.highlight(code)
    text.rstrip()
    return list(text.split("\n", allow_blank=True))


def _gutter(lines: list[Text], first: int, start: int, end: int) -> Text:
    width = len(str(first + len(lines)))
    out = Text()
    for i, line in enumerate(lines):
        n = first + i
        mark = "▶" if start <= n <= end else " "
        out.append(f"{mark}{n:>{width}} │ ", style="bold" if mark == "▶" else "dim")
        out.append_text(line)
        out.append("\n")
    out.rstrip()
    return out
