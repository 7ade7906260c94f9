"""Helpers of the CLI tests: run the real ``musubi`` command in a subprocess."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from core.client import stop_engine
from core.paths import HomePaths

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).parent / "musubi"
# The installed console script when there is one (what users run), else the module.
MUSUBI: list[str] = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "tui"]


@dataclass
class Result:
    """Outcome of one ``musubi`` run."""

    args: Sequence[str]
    rc: int
    out: str
    err: str

    def json(self) -> Any:
        try:
            return json.loads(self.out)
        except json.JSONDecodeError as exc:
            raise AssertionError(f"musubi {' '.join(self.args)} printed no JSON: {self.out!r} / {self.err!r}") from exc

    def __str__(self) -> str:
        return f"musubi {' '.join(self.args)} -> {self.rc}\nstdout: {self.out}\nstderr: {self.err}"


def base_env(home: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MUSUBI_TENANT", "MUSUBI_HOME")}
    if home is not None:
        env["MUSUBI_HOME"] = home
    env["COLUMNS"] = "200"  # one line per table row, whatever the terminal
    return env


def run_musubi(
    *args: str, home: str | None, env: dict[str, str] | None = None, cwd: str | None = None,
    input: str | None = None, timeout: float = 120,
) -> Result:
    """Run the real CLI in a subprocess (stdin is not a terminal)."""
    e = base_env(home)
    if env:
        e.update(env)
    p = subprocess.run(
        [*MUSUBI, *args], env=e, cwd=cwd or REPO, input=input if input is not None else "",
        capture_output=True, text=True, timeout=timeout,
    )
    return Result(args, p.returncode, p.stdout, p.stderr)


class Cli:
    """``musubi`` bound to one home: ``cli("tenant", "list", "--json")``."""

    def __init__(self, home: str) -> None:
        self.home = home
        self.paths = HomePaths.resolve(home)

    def __call__(self, *args: str, **kw: Any) -> Result:
        return run_musubi(*args, home=self.home, **kw)

    def ok(self, *args: str, **kw: Any) -> Result:
        r = self(*args, **kw)
        assert r.rc == 0, str(r)
        assert "Traceback" not in r.err, str(r)
        return r

    def js(self, *args: str, **kw: Any) -> Any:
        """Run with --json, expect exit 0, return the parsed output."""
        return self.ok(*args, "--json", **kw).json()

    def fails(self, rc: int, *args: str, **kw: Any) -> Result:
        r = self(*args, **kw)
        assert r.rc == rc, str(r)
        assert "Traceback" not in r.err and "Traceback" not in r.out, str(r)
        assert r.err.strip(), f"no message on stderr: {r}"
        return r

    def stop(self) -> None:
        stop_engine(self.paths)


def short_home() -> str:
    return tempfile.mkdtemp(prefix="mh", dir="/tmp")


@contextlib.contextmanager
def cli_fixture(*, start: bool = True, env: Mapping[str, str] | None = None) -> Iterator[Cli]:
    """The body of every CLI fixture: ``musubi`` on a fresh short home (its engine started through the CLI
    if ``start``), with ``env`` set while it lives; the engine stopped and the home removed afterwards."""
    with pytest.MonkeyPatch.context() as mp:
        for name, value in (env or {}).items():
            mp.setenv(name, value)
        c = Cli(short_home())
        try:
            if start:
                c.ok("engine", "start")
            yield c
        finally:
            c.stop()
            shutil.rmtree(c.home, ignore_errors=True)
