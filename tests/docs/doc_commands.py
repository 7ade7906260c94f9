"""The shell commands the docs show, extracted and run in document order.

A fenced block labelled ``sh``, ``bash``, ``shell`` or ``console`` is a shell block.  In a
``console`` block only the lines after a ``$ `` prompt are commands (a line ending in ``\\``
continues on the next); the other lines are output and are not compared.  A block is run
unless the line just before its fence (blank lines skipped) is a reviewed marker:

- ``<!-- not-run: REASON -->``: never run (a TUI, a remote, real vendor credentials, a
  server that does not return); the reason is required;
- ``<!-- exit: N -->``: run, and it must end with exit status N (a documented refusal).

Every block of one file runs in its own ``bash`` (``set -eo pipefail``: the first failing
command ends the block) against one sandbox per file: a temporary ``MUSUBI_HOME``, a
temporary ``HOME`` (so ``~/.config/musubi`` is the sandbox's) that is also the first
block's working directory, and a ``PATH`` whose ``musubi`` and ``python`` run this
checkout.  A ``cd`` carries over to the next block of the file.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL_LANGS = frozenset({"sh", "bash", "shell", "console"})
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})\s*(?P<info>[^`\s]*)")
_MARKER = re.compile(r"^<!--\s*(?P<kind>not-run|exit)\s*:\s*(?P<value>.*?)\s*-->\s*$")
# What a command looks like, to catch one left in an unlabelled block (it would never run).
COMMAND_LINE = re.compile(r"^\s*(?:\$ )?(?:musubi|make|python3?|pip|git|\.venv/bin/\S+) ")
BLOCK_TIMEOUT_S = 180
# Vendor and session variables a developer's shell may hold; the sandbox must not see them.
_DROP_PREFIXES = ("MUSUBI_", "OPENAI_", "ANTHROPIC_", "AZURE_", "OLLAMA_", "XDG_", "PYTHON", "VIRTUAL_ENV")


@dataclass(frozen=True)
class Block:
    """One fenced block: where it starts (1-based line of the fence), its label, text and marker."""

    file: str
    line: int
    lang: str
    text: str
    marker: str | None = None  # "not-run" | "exit"
    marker_value: str = ""

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def is_shell(self) -> bool:
        return self.lang in SHELL_LANGS

    @property
    def expected_exit(self) -> int:
        return int(self.marker_value) if self.marker == "exit" else 0

    def script(self) -> str:
        """The commands to run: the whole block, or a console block's prompted lines."""
        if self.lang != "console":
            return self.text
        out: list[str] = []
        continuing = False
        for line in self.text.splitlines():
            if line.startswith("$ ") or continuing:
                cmd = line[2:] if line.startswith("$ ") and not continuing else line
                out.append(cmd)
                continuing = cmd.rstrip().endswith("\\")
        return "\n".join(out) + "\n"


class DocError(ValueError):
    """A marker that is malformed or attached to nothing."""


def blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path``, with the marker just before it (CommonMark fences)."""
    name = str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)
    lines = path.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    pending: tuple[str, str, int] | None = None  # a marker waiting for its block
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _FENCE.match(line)
        marker = _MARKER.match(line.strip())
        if marker:
            if pending is not None:
                raise DocError(f"{name}:{pending[2]}: a <!-- {pending[0]}: --> marker with no fenced block after it")
            pending = (marker["kind"], marker["value"], i + 1)
        elif line.strip().startswith("<!--") and re.match(r"<!--\s*(not-run|exit)\b", line.strip()):
            raise DocError(f"{name}:{i + 1}: malformed marker {line.strip()!r}; write <!-- not-run: REASON --> "
                           "or <!-- exit: N -->")
        elif m:
            fence, start = m["fence"], i
            body: list[str] = []
            i += 1
            while i < len(lines) and not re.match(rf"^{re.escape(fence[0])}{{{len(fence)},}}\s*$", lines[i]):
                body.append(lines[i])
                i += 1
            kind, value = (pending[0], pending[1]) if pending else (None, "")
            if kind == "not-run" and not value:
                raise DocError(f"{name}:{pending[2] if pending else start}: <!-- not-run: --> needs a reason")
            if kind == "exit" and not value.isdigit():
                raise DocError(f"{name}:{pending[2] if pending else start}: <!-- exit: N --> needs a number, "
                               f"got {value!r}")
            lang = m["info"].lower()
            if kind and lang not in SHELL_LANGS:
                raise DocError(f"{name}:{start + 1}: a <!-- {kind}: --> marker on a ```{lang} block; markers "
                               "belong on shell blocks (sh, bash, console)")
            out.append(Block(name, start + 1, lang, "\n".join(body) + "\n", kind, value))
            pending = None
        elif line.strip() and pending is not None:
            raise DocError(f"{name}:{pending[2]}: a <!-- {pending[0]}: --> marker must be followed by a fenced "
                           "block (blank lines only between them)")
        i += 1
    if pending is not None:
        raise DocError(f"{name}:{pending[2]}: a <!-- {pending[0]}: --> marker with no fenced block after it")
    return out


def doc_files() -> list[Path]:
    """README.md, DEVELOPERS.md and every docs/*.md page."""
    return [ROOT / "README.md", ROOT / "DEVELOPERS.md", *sorted((ROOT / "docs").glob("*.md"))]


@dataclass(frozen=True)
class Result:
    block: Block
    status: int
    output: str

    @property
    def ok(self) -> bool:
        return self.status == self.block.expected_exit

    def report(self) -> str:
        tail = "\n".join(self.output.splitlines()[-25:])
        want = self.block.expected_exit
        return (f"{self.block.where}: the block ended with exit {self.status} (expected {want}"
                f"{'' if want else '; mark it <!-- exit: N --> if the refusal is the point'}):\n"
                f"{self.block.text.rstrip()}\n--- output (last lines) ---\n{tail}")


class Sandbox:
    """A temporary MUSUBI_HOME and HOME, and a PATH whose musubi/python are this checkout's."""

    def __init__(self, extra_path: Sequence[Path] = ()) -> None:
        # Short on purpose: the engine's socket path must stay under 107 bytes.
        self.home = Path(tempfile.mkdtemp(prefix="mh", dir="/tmp"))
        self.user = Path(tempfile.mkdtemp(prefix="mu", dir="/tmp"))
        self.bin = self.user / ".doc-bin"
        self.bin.mkdir()
        self.cwd_file = self.home / ".doc-cwd"
        self.cwd_file.write_text(str(self.user))
        pythonpath = os.pathsep.join([str(ROOT), *map(str, extra_path)])
        for name, run in (("musubi", "-m tui"), ("python", ""), ("python3", "")):
            shim = self.bin / name
            shim.write_text(f'#!/bin/sh\nPYTHONPATH="{pythonpath}" exec "{sys.executable}" {run} "$@"\n')
            shim.chmod(0o755)
        keep = {k: v for k, v in os.environ.items() if not k.startswith(_DROP_PREFIXES)}
        self.env = {**keep, "HOME": str(self.user), "MUSUBI_HOME": str(self.home),
                    "PATH": f"{self.bin}{os.pathsep}/usr/local/bin:/usr/bin:/bin", "COLUMNS": "120",
                    "NO_COLOR": "1", "GIT_AUTHOR_NAME": "Doc Test", "GIT_AUTHOR_EMAIL": "doc@example.com",
                    "GIT_COMMITTER_NAME": "Doc Test", "GIT_COMMITTER_EMAIL": "doc@example.com"}

    def run(self, block: Block) -> Result:
        """Run one block where the previous one left off; its status and combined output."""
        script = ('set -eo pipefail\ncd "$(cat "$DOC_CWD_FILE")"\ntrap \'pwd > "$DOC_CWD_FILE"\' EXIT\n'
                  + block.script())
        try:
            done = subprocess.run(["bash", "-c", script], env={**self.env, "DOC_CWD_FILE": str(self.cwd_file)},
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  text=True, timeout=BLOCK_TIMEOUT_S)
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout if isinstance(exc.stdout, str) else (exc.stdout or b"").decode(errors="replace")
            return Result(block, -1, f"{out}\n(timed out after {BLOCK_TIMEOUT_S} s)")
        return Result(block, done.returncode, done.stdout)

    def close(self) -> None:
        """Stop the sandbox's engine (if a command started one) and remove both folders."""
        from core.paths import HomePaths
        from tests.docs.engine_home import shutdown

        if (self.home / "engine.pid").exists() or (self.home / "engine.sock").exists():
            shutdown(HomePaths(self.home))
        shutil.rmtree(self.home, ignore_errors=True)
        shutil.rmtree(self.user, ignore_errors=True)


EXAMPLES = ROOT / "examples" / "plugins"


def install_examples(target: Path) -> Path:
    """Build and install every example plug-in into ``target`` (offline, no deps); return ``target``.

    The sources are copied first: setuptools writes build/ and *.egg-info beside the sources.
    ``target`` then holds each package and its ``.dist-info`` (whose entry_points.txt
    ``importlib.metadata`` reads once ``target`` is on ``sys.path``).
    """
    sources = target.parent / f"{target.name}-src"
    shutil.copytree(EXAMPLES, sources)
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--no-index",
                    "--disable-pip-version-check", "--target", str(target),
                    *map(str, sorted(p for p in sources.iterdir() if (p / "pyproject.toml").exists()))],
                   check=True, stdin=subprocess.DEVNULL, capture_output=True, timeout=300)
    return target


def run_file(path: Path, extra_path: Sequence[Path] = ()) -> Iterator[Result]:
    """Run the shell blocks of ``path`` in order, yielding each result; stop after the first failure."""
    todo = [b for b in blocks(path) if b.is_shell and b.marker != "not-run"]
    if not todo:
        return
    box = Sandbox(extra_path)
    try:
        for block in todo:
            result = box.run(block)
            yield result
            if not result.ok:
                return
    finally:
        box.close()
