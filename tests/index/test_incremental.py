"""Incremental re-index in a real git repository: exact counts of embedded chunks (fake embedder)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.engine.helpers import Home

from .helpers import add_project, git, index, make_repo, search, write

A = '''
def parse_config(path):
    """Read the settings file."""
    with open(path) as f:
        return f.read()


def add_numbers(a, b):
    return a + b
'''
B = '''
class Stack:
    def push(self, item):
        self.items.append(item)

    def pop(self):
        return self.items.pop()
'''
A_CHUNKS = 2  # a.py: its two functions
DOC = '''
# Guide

Some words.

## Setup

Install it.
'''


def _status(h: Home, project: str) -> dict[str, Any]:
    status, body = h.raw("GET", "/v1/index/status", tenant="default", project=project)
    assert status == 200, body
    return dict(body)


def _chunks(h: Home, project: str) -> int:
    return int(_status(h, project)["chunks"])


def test_edit_move_delete_and_branch_switch_embed_only_what_changed(fhome: Home, tmp_path: Path) -> None:
    repo = make_repo(tmp_path, {"a.py": A, "pkg/b.py": B, "README.md": DOC})
    fhome.start()
    add_project(fhome, "default", "demo", repo)

    first = index(fhome, "default", "demo")
    total = first["chunks"]
    assert first["files"] == 3 and first["changed"] == 3 and first["embedded"] == total and first["reused"] == 0
    assert total >= 5

    # Nothing changed: nothing chunked, nothing embedded.
    again = index(fhome, "default", "demo")
    assert (again["changed"], again["embedded"], again["reused"], again["chunks"]) == (0, 0, 0, total)

    # Edit one function: its file is re-chunked, only that function is embedded; the rest is copied.
    write(repo, "a.py", A.replace("return a + b", "return a + b + 0"))
    edit = index(fhome, "default", "demo")
    assert edit["changed"] == 1 and edit["embedded"] == 1
    assert edit["reused"] == A_CHUNKS - 1 and edit["chunks"] == total

    # Move a file: nothing embedded, every chunk's vector reused; the old path leaves the index.
    git(repo, "mv", "pkg/b.py", "pkg/moved.py")
    moved = index(fhome, "default", "demo")
    assert moved["changed"] == 1 and moved["deleted"] == 1 and moved["embedded"] == 0 and moved["reused"] >= 2
    status, body = search(fhome, "default", "demo", "Stack push")
    assert status == 200, body
    paths = {r["path"] for r in body["results"]}
    assert "pkg/moved.py" in paths and "pkg/b.py" not in paths

    # Delete a file: it leaves the index, nothing embedded.
    (repo / "README.md").unlink()
    before = _chunks(fhome, "demo")
    gone = index(fhome, "default", "demo")
    assert gone["deleted"] == 1 and gone["embedded"] == 0 and gone["changed"] == 0
    assert _chunks(fhome, "demo") < before
    status, body = search(fhome, "default", "demo", "Guide Setup Install")
    assert all(r["path"] != "README.md" for r in body["results"])

    # Branch switch: a branch adds one new function; switching re-embeds only it, switching back nothing.
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "move and delete")
    git(repo, "checkout", "-q", "-b", "feature")
    write(repo, "c.py", "def brand_new_feature(x):\n    return x * 42\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "feature")
    on_feature = index(fhome, "default", "demo")
    assert on_feature["changed"] == 1 and on_feature["embedded"] == 1
    git(repo, "checkout", "-q", "main")
    back = index(fhome, "default", "demo")
    assert back["deleted"] == 1 and back["embedded"] == 0
    git(repo, "checkout", "-q", "feature")
    again_feature = index(fhome, "default", "demo")
    # The function's vector left the index with the file: it is embedded again (one chunk), nothing else.
    assert again_feature["changed"] == 1 and again_feature["embedded"] == 1


def test_identical_chunks_in_many_files_share_one_vector(fhome: Home, tmp_path: Path) -> None:
    same = "def duplicated_helper(x):\n    return x + 1\n"
    repo = make_repo(tmp_path, {f"pkg{i}/util.py": same for i in range(4)})
    fhome.start()
    add_project(fhome, "default", "dups", repo)
    first = index(fhome, "default", "dups")
    assert first["chunks"] == 4 and first["embedded"] + first["reused"] == 4
    for i in range(4, 8):  # four more copies: all reused from one vector, in one batch
        write(repo, f"pkg{i}/util.py", same)
    more = index(fhome, "default", "dups")
    assert (more["changed"], more["embedded"], more["reused"], more["chunks"]) == (4, 0, 4, 8)


def _answers(h: Home, project: str, queries: list[str]) -> list[list[tuple[object, ...]]]:
    """Every chunk each query finds, with its fused score, in a canonical order (ties may list either way)."""
    out = []
    for q in queries:
        status, body = search(h, "default", project, q, k=100)
        assert status == 200, body
        out.append(sorted((r["path"], r["start_line"], r["end_line"], r["symbol"], round(r["score"], 5))
                          for r in body["results"]))
    return out


def test_an_incremental_update_answers_like_a_full_rebuild(fhome: Home, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "one", {"a.py": A, "pkg/b.py": B, "README.md": DOC})
    fhome.start()
    add_project(fhome, "default", "inc", repo)
    index(fhome, "default", "inc")
    write(repo, "a.py", A.replace("return a + b", "return a + b + 0") + "\n\ndef config_path():\n    return 'x'\n")
    (repo / "README.md").unlink()
    write(repo, "pkg/c.py", "def parse_stack_config(items):\n    return Stack()\n")
    inc = index(fhome, "default", "inc")
    assert inc["lexical_update"] == "update"  # the lexical index was updated in place, not rebuilt
    # The same files indexed from scratch as another project.
    fresh = make_repo(tmp_path / "two", {rel: (repo / rel).read_text() for rel in ("a.py", "pkg/b.py", "pkg/c.py")})
    add_project(fhome, "default", "full", fresh)
    assert index(fhome, "default", "full")["lexical_update"] == "build"
    queries = ["parse the config", "Stack push pop", "add numbers", "config path", "settings file"]
    assert _answers(fhome, "inc", queries) == _answers(fhome, "full", queries)
    # And after an engine restart (the lexical index read back from disk, the vectors from base + delta).
    fhome.stop()
    fhome.start()
    assert _answers(fhome, "inc", queries) == _answers(fhome, "full", queries)


def _state(h: Home, project: str) -> str:
    return str(_status(h, project)["state"])


def test_status_says_stale_when_files_change_after_an_index(fhome: Home, tmp_path: Path) -> None:
    import os

    repo = make_repo(tmp_path, {"a.py": A, "pkg/b.py": B, "README.md": DOC})
    fhome.start()
    add_project(fhome, "default", "st", repo)
    index(fhome, "default", "st")
    assert _state(fhome, "st") == "ready"
    a = repo / "a.py"
    st = a.stat()
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # touched, same bytes: not a change
    assert _state(fhome, "st") == "ready"
    text = a.read_text()
    a.write_text(text.replace("a + b", "a - b"))  # same size, new content: confirmed by its hash
    assert a.stat().st_size == st.st_size
    assert _state(fhome, "st") == "stale"
    index(fhome, "default", "st")
    assert _state(fhome, "st") == "ready"
    write(repo, "pkg/b.py", B + "\n# one more line\n")  # edited, new size
    assert _state(fhome, "st") == "stale"
    index(fhome, "default", "st")
    write(repo, "pkg/new.py", "def x():\n    return 1\n")  # a new file (not yet git add-ed)
    assert _state(fhome, "st") == "stale"
    index(fhome, "default", "st")
    (repo / "README.md").unlink()  # a deleted file
    assert _state(fhome, "st") == "stale"
    index(fhome, "default", "st")
    assert _state(fhome, "st") == "ready"
    # A snapshot that cannot be read: unknown, so the status does not claim a change.
    snap = fhome.dir / "tenants" / "default" / "code" / "st" / "files.msgpack"
    assert snap.is_file()
    snap.write_bytes(b"\xff torn")
    assert _state(fhome, "st") == "ready"
