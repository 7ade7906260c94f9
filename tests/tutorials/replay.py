"""Replay a tutorial's solutions from a shell: files, ``musubi`` commands, then the engine's check.

The TUI's Pilot replay (tests/tui) presses the keys and runs the palette actions of ``key``,
``mode`` and ``palette`` steps; here those are reported done the way the screen reports them
(``tutorial done``), and every ``cli`` and ``state`` step is replayed for real: its ``files``
edited in the sandbox folder, its ``argv`` run as ``musubi`` commands from that folder (the
last one must end with the solution's ``exit``), then ``tutorial check`` (steps the engine
checks, which must hold) or ``tutorial done``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from tests.cli.helpers import Cli

CLIENT_KINDS = ("key", "mode", "palette")


def edit(folder: Path, f: dict[str, Any]) -> None:
    path = folder / f["path"]
    if f.get("find") is not None:
        text = path.read_text("utf-8")
        assert f["find"] in text, f"{path} does not hold {f['find']!r}"
        path.write_text(text.replace(f["find"], f["content"], 1), "utf-8")
    elif f.get("append"):
        with path.open("a", encoding="utf-8") as fh:
            fh.write(f["content"])
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f["content"], "utf-8")


def replay(cli: Cli, tutorial: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Start ``tutorial`` and replay every step; answers the final ``tutorial show``."""
    started = cli.js("tutorial", "start", tutorial)
    folder = Path(started["sandbox"]["path"])
    shown = cli.js("tutorial", "show", tutorial)
    for first in shown["steps"]:
        # read again: an earlier step may have completed this one, or filled in {run}
        step = next(s for s in cli.js("tutorial", "show", tutorial)["steps"] if s["id"] == first["id"])
        if step["state"] != "todo":
            continue  # completed at once (already satisfied) by an earlier step
        sol = step["solution"]
        for f in sol["files"]:
            edit(folder, f)
        for i, argv in enumerate(sol["argv"]):
            want = sol["exit"] if i == len(sol["argv"]) - 1 else 0
            r = cli(*argv, cwd=str(folder), env=env)
            assert r.rc == want, f"{tutorial}/{step['id']}: {r}"
            assert "Traceback" not in r.err, str(r)
        if step["check"] is not None:
            # the engine may still be working (a run reaching its gate): give it a moment, as a user would
            deadline = time.monotonic() + 30
            while True:
                r = cli("tutorial", "check", tutorial, step["id"], "--json")
                if r.rc == 0 or time.monotonic() > deadline:
                    break
                time.sleep(0.5)
            assert r.rc == 0, f"{tutorial}/{step['id']} does not hold after its solution: {r}"
            assert r.json()["ok"] is True
        else:
            assert step["kind"] in (*CLIENT_KINDS, "cli"), step
            cli.js("tutorial", "done", tutorial, step["id"])
    return cli.js("tutorial", "show", tutorial)
