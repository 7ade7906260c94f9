"""Follow a run from the CLI (``musubi run``, ``musubi runs show --follow``): progress from the event stream.

Like :mod:`tui.follow` for jobs: subscribe to ``GET /v1/events?types=run.*`` first, then read the
run once (nothing between the two is missed), then print each step, call and gate of that run on
stderr until it ends.  The run belongs to the engine: Ctrl-C or a lost terminal stops only the
follower.  Exit code: 0 done, 3 stopped by a quota, 4 by a permission, 1 any other end; 130 on Ctrl-C.
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any

import click

from core.api import calls
from core.errors import EngineUnavailable, MusubiError, PermissionDenied, QuotaExceeded
from tui.follow import STREAM_TIMEOUT_S, _events
from tui.output import CliState, emit, line, warn

ENDED = frozenset({"done", "failed", "cancelled", "stopped"})
TYPES = "run.state,run.step,run.call,run.gate,run.note"


def hint(run_id: str) -> str:
    return f"see it with: musubi runs show {run_id}; cancel it with: musubi runs cancel {run_id}"


def _say(text: str, quiet: bool) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def follow(state: CliState, run: dict[str, Any]) -> dict[str, Any]:
    """Print the run's progress until it ends; then its summary (exit code by how it ended)."""
    quiet = state.json
    try:
        final = _watch(state, run, quiet)
    except KeyboardInterrupt:
        warn(f"stopped following run {run['id']}; it keeps running in the engine. {hint(run['id'])}")
        raise click.exceptions.Exit(130) from None
    report(state, final)
    return final


def _watch(state: CliState, run: dict[str, Any], quiet: bool) -> dict[str, Any]:
    client = state.client()
    client.timeout = STREAM_TIMEOUT_S
    rid = run["id"]
    asked: set[str] = set()
    shown: dict[str, str] = {}  # step path -> the status last printed
    try:
        with client.stream("GET", "/v1/events", query={"types": TYPES}) as resp:
            run = dict(client.call(calls.run_show(rid)))
            if run["state"] in ENDED:
                return run
            _say(f"run {rid}: workflow {run['workflow']}, {run['state']}", quiet)
            for ev in _events(resp):
                kind = ev.get("type")
                if kind == "stream.closed":
                    break
                if ev.get("run") != rid and (ev.get("run") or {}).get("id") != rid:
                    continue
                if kind == "run.step":
                    s = ev["step"]
                    if shown.get(s["path"]) == s["status"]:
                        continue
                    shown[s["path"]] = s["status"]
                    if s["status"] in ("running", "done", "failed", "stopped", "rejected"):
                        _say(f"  step {s['path']} {s['title']}: {s['status']}"
                             + (f" ({s['model']}, {s['input_tokens'] + s['output_tokens']:,} tokens, "
                                f"${s['cost_usd']})" if s["status"] == "done" and s["model"] else ""), quiet)
                elif kind == "run.call" and not ev.get("replayed"):
                    _say(f"    {ev['agent']} on {ev['model']}: {ev['outcome']}, {ev['input_tokens']:,}+"
                         f"{ev['output_tokens']:,} tokens, ${ev['cost_usd']}, {ev['latency_ms']:.0f} ms", quiet)
                elif kind == "run.gate":
                    a = ev["approval"]
                    if a["state"] == "pending" and a["gate"] not in asked:
                        asked.add(a["gate"])
                        _say(f"  waiting at approval gate {a['gate']!r} (fails closed at {a['deadline']}): "
                             f"review with: musubi runs show {rid}; then musubi runs approve {rid} "
                             f"(or reject / approve --changes)", quiet)
                elif kind == "run.note":
                    _say(f"    {ev['text']}", quiet)
                elif kind == "run.state" and ev["run"]["state"] in ENDED:
                    return dict(client.call(calls.run_show(rid)))
    except (EngineUnavailable, OSError) as exc:
        raise MusubiError(f"lost the engine's event stream ({exc}); the run may still be going. {hint(rid)}",
                          code="engine_unavailable") from None
    with contextlib.suppress(MusubiError):
        run = dict(client.call(calls.run_show(rid)))
    if run["state"] not in ENDED:
        raise MusubiError(f"the engine closed the event stream while run {rid} was {run['state']}; it resumes "
                          f"when the engine runs again. {hint(rid)}", code="engine_unavailable")
    return run


def _cost(r: dict[str, Any]) -> str:
    est = r["estimate"]
    return f"{r['tokens']:,} tokens, ${r['cost_usd']}" + (
        f" (estimated {est['tokens']:,} tokens, ${est['cost_usd']})" if est.get("tokens") else "")


def run_error(r: dict[str, Any]) -> MusubiError:
    """The error a run that did not finish ends the command with: typed by why it stopped (exit 3 quota,
    4 permission, else 1), its message the reason, the run itself as ``run``."""
    stop = r.get("stop_code") or ""
    message = (f"run {r['id']} {r['state']} ({stop or 'no stop code'}): {r.get('reason') or 'no reason given'}. "
               f"{_cost(r)}." + (f" Resume with: musubi runs resume {r['id']}" if r["state"] == "stopped" else ""))
    typed: type[MusubiError] = {"quota": QuotaExceeded, "permission": PermissionDenied}.get(stop, MusubiError)
    code = None if typed is not MusubiError else f"run_{r['state']}"
    return typed(message, code=code, run_id=r["id"], state=r["state"], stop_code=r.get("stop_code"), run=r)


def report(state: CliState, run: dict[str, Any]) -> None:
    """A done run: its summary (``--json``: the run).  Any other end: raised as :func:`run_error`, which the
    CLI's error printer shows (``--json``: ``{"error": {..., "run": {...}}}`` on stdout; a message on stderr)."""
    if run["state"] != "done":
        raise run_error(run)
    emit(state, run, lambda r: line(f"run {r['id']} done: {_cost(r)}."))
