"""Every shell command shown in README.md, DEVELOPERS.md and docs/*.md runs, in document order.

See tests/docs/doc_commands.py for the conventions (``sh``/``console`` blocks, the
``<!-- not-run: REASON -->`` and ``<!-- exit: N -->`` markers) and the sandbox.  One engine
per page at most (started by the page's first command that needs it, stopped afterwards).
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

from tests.docs.doc_commands import (
    COMMAND_LINE,
    ROOT,
    Block,
    DocError,
    blocks,
    doc_files,
    install_examples,
    run_file,
)

OPTIONAL_TOOLS = ("jq",)
PAGES = [pytest.param(p, id=str(p.relative_to(ROOT))) for p in doc_files()]


def _runnable(path: Path) -> list[Block]:
    return [b for b in blocks(path) if b.is_shell and b.marker != "not-run"]


def test_the_pages_that_teach_commands_have_runnable_blocks() -> None:
    # An extractor that found nothing would pass every page below.
    for name in ("README.md", "docs/quickstart.md", "docs/plugins.md", "docs/cli.md"):
        assert _runnable(ROOT / name), f"{name}: no runnable shell block found"


@pytest.mark.parametrize("path", PAGES)
def test_markers_are_well_formed_and_commands_are_in_shell_blocks(path: Path) -> None:
    found = blocks(path)  # raises DocError on a malformed or stray marker
    hidden = [f"{b.where}: {line.strip()!r}" for b in found if not b.lang
              for line in b.text.splitlines() if COMMAND_LINE.match(line)]
    assert not hidden, ("commands in a block with no language never run: label the block ```sh (and mark it "
                        "<!-- not-run: REASON --> if it cannot run here):\n" + "\n".join(hidden))


@pytest.mark.parametrize("path", PAGES)
def test_every_shown_command_runs(path: Path, tmp_path: Path) -> None:
    if not _runnable(path):
        pytest.skip("no shell block to run")
    for tool in OPTIONAL_TOOLS:  # system tools the docs use that pip cannot install
        if shutil.which(tool) is None and any(re.search(rf"\b{tool} ", b.script()) for b in _runnable(path)):
            pytest.skip(f"the page's commands use {tool}, which is not installed (make installs it when run as root)")
    # The plug-in guide runs against the example plug-ins, really built and installed.
    extra = [install_examples(tmp_path / "plugins")] if path.name == "plugins.md" else []
    failed = [r.report() for r in run_file(path, extra) if not r.ok]
    assert not failed, failed[0]


# -- the runner itself ------------------------------------------------------------------------


def _page(tmp_path: Path, text: str) -> Path:
    page = tmp_path / "page.md"
    page.write_text(text, encoding="utf-8")
    return page


def test_an_unmarked_failing_command_fails_and_stops_the_page(tmp_path: Path) -> None:
    page = _page(tmp_path, "```sh\necho one\n```\n\n```sh\nfalse\necho never\n```\n\n```sh\necho after\n```\n")
    results = list(run_file(page))
    assert [r.ok for r in results] == [True, False]  # the third block never ran
    assert results[1].status == 1 and "never" not in results[1].output
    assert "page.md:5" in results[1].report()


def test_markers_skip_and_expect_exit_codes(tmp_path: Path) -> None:
    page = _page(tmp_path, "<!-- not-run: needs a terminal -->\n```sh\nexit 9\n```\n\n"
                           "<!-- exit: 3 -->\n```sh\nexit 3\n```\n\n<!-- exit: 3 -->\n```sh\ntrue\n```\n")
    results = list(run_file(page))
    assert [(r.block.line, r.status, r.ok) for r in results] == [(7, 3, True), (12, 0, False)]


def test_console_prompts_cd_and_the_sandbox(tmp_path: Path) -> None:
    page = _page(tmp_path, "```console\n$ mkdir shop && cd shop\n$ echo a \\\n  b > out.txt\nnot a command\n```\n\n"
                           "```sh\ntest \"$(cat out.txt)\" = 'a b'\ntest \"$HOME\" != /root\n"
                           "test -z \"${OPENAI_API_KEY:-}\"\nmusubi --version\n"
                           "case \"$MUSUBI_HOME\" in /tmp/mh*) ;; *) exit 7 ;; esac\n```\n")
    results = list(run_file(page))
    assert [r.ok for r in results] == [True, True], [r.report() for r in results]


@pytest.mark.parametrize("text, problem", [
    ("<!-- not-run: -->\n```sh\nx\n```\n", "needs a reason"),
    ("<!-- exit: three -->\n```sh\nx\n```\n", "needs a number"),
    ("<!-- not-run: why -->\nsome prose\n```sh\nx\n```\n", "must be followed by a fenced block"),
    ("<!-- not-run: why -->\n```toml\nx = 1\n```\n", "belong on shell blocks"),
    ("text\n<!-- not-run: why -->\n", "no fenced block after it"),
    ("<!-- not-run why -->\n```sh\nx\n```\n", "malformed marker"),
])
def test_bad_markers_are_refused(tmp_path: Path, text: str, problem: str) -> None:
    with pytest.raises(DocError, match=problem):
        blocks(_page(tmp_path, text))
