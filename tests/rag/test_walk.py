"""Which files get indexed: git's list or a .gitignore-aware walk, and every reason to skip a file."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from core.errors import BadRequest
from core.rag.walk import SourceFile, iter_files


def _git(root: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(root), *args], check=True, capture_output=True)


def _tree(root: Path) -> None:
    """A project with one file for every rule."""
    files = {
        "src/app.py": "print('hi')\n",
        "src/with space.py": "x = 1\n",
        "src/日本語.md": "# 見出し\n",
        "src/new\nline.txt": "odd name\n",
        "ignored.log": "noise\n",
        "node_modules/pkg/index.js": "module.exports = 1;\n",
        "web/dist/bundle.js": "var a;\n",
        "build/gen.py": "x = 2\n",
        "pkg/__pycache__/m.py": "x = 3\n",
        "static/app.min.js": "var b;\n",
        "package-lock.json": "{}\n",
        "logo.png": "not really a png\n",
    }
    for rel, text in files.items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text, encoding="utf-8")
    (root / ".gitignore").write_text("*.log\n", encoding="utf-8")
    (root / "blob.dat").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00data")
    (root / "big.txt").write_text("y = 1\n" * 1000, encoding="utf-8")  # 6,000 bytes
    (root / "minified.js").write_text("var x=1;" * 600 + "\n", encoding="utf-8")
    (root / "utf16.txt").write_bytes("hello\n".encode("utf-16"))


def _walk(root: Path, **kw: object) -> tuple[list[str], dict[str, str]]:
    skipped: dict[str, str] = {}
    found = list(iter_files(root, on_skip=lambda p, why: skipped.__setitem__(p, why), **kw))  # type: ignore[arg-type]
    return [f.path for f in found], skipped


KEPT = [
    ".gitignore",
    "src/app.py",
    "src/new\nline.txt",
    "src/with space.py",
    "src/日本語.md",
    "utf16.txt",
]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    _git(root, "init", "-q")  # no commit ever: ls-files still lists what is added or untracked
    _tree(root)
    _git(root, "add", "src/app.py", ".gitignore")
    return root


def test_git_repo_without_commits_tracked_untracked_and_ignored(repo: Path) -> None:
    paths, skipped = _walk(repo, max_bytes=5000)
    assert paths == KEPT
    assert "ignored.log" not in paths and "ignored.log" not in skipped  # git never lists it
    assert (
        skipped["node_modules/pkg/index.js"]
        == skipped["web/dist/bundle.js"]
        == "vendored or generated"
    )
    assert skipped["build/gen.py"] == skipped["pkg/__pycache__/m.py"] == "vendored or generated"
    assert skipped["static/app.min.js"] == skipped["package-lock.json"] == "vendored or generated"
    assert skipped["logo.png"] == "binary (by extension)"
    assert skipped["blob.dat"] == "binary (NUL byte in the first 8 KiB)"
    assert skipped["big.txt"] == "larger than 5000 bytes"
    assert skipped["minified.js"].startswith("minified")


def test_source_file_fields(repo: Path) -> None:
    f = next(f for f in iter_files(repo) if f.path == "src/app.py")
    data = (repo / "src/app.py").read_bytes()
    assert f == SourceFile(
        "src/app.py", repo.resolve() / "src/app.py", len(data), hashlib.sha256(data).hexdigest()
    )


def test_size_limit_is_configurable(repo: Path) -> None:
    assert "big.txt" in _walk(repo, max_bytes=10_000)[0]
    assert "big.txt" not in _walk(repo, max_bytes=5999)[0]


def test_extra_excludes(repo: Path) -> None:
    paths, skipped = _walk(repo, exclude=["src/*.md"])
    assert "src/日本語.md" not in paths and skipped["src/日本語.md"] == "vendored or generated"


def test_symlinks_out_of_the_root_are_not_followed(tmp_path: Path, repo: Path) -> None:
    secret = tmp_path / "secret.py"
    secret.write_text("password = 1\n", encoding="utf-8")
    os.symlink(secret, repo / "escape.py")
    os.symlink("../" * 5 + "etc/hostname", repo / "escape2.txt")
    os.symlink("src/app.py", repo / "inside.py")
    os.symlink("nowhere.py", repo / "dangling.py")
    paths, skipped = _walk(repo)
    assert skipped["escape.py"] == skipped["escape2.txt"] == "symlink leads outside the project"
    assert "inside.py" in paths
    assert "dangling.py" in skipped


def test_submodule_gitlink_and_deleted_tracked_file_are_skipped(repo: Path) -> None:
    _git(repo, "update-index", "--add", "--cacheinfo", f"160000,{'a' * 40},libs/sub")
    (repo / "libs/sub").mkdir(parents=True)
    (repo / "src/app.py").unlink()
    paths, skipped = _walk(repo)
    assert skipped["libs/sub"] == "not a regular file"
    assert skipped["src/app.py"].startswith("missing")


def test_a_file_name_that_is_not_utf8_is_skipped(repo: Path) -> None:
    fd = os.open(os.fsencode(str(repo)) + b"/bad\xff.py", os.O_CREAT | os.O_WRONLY, 0o644)
    os.close(fd)
    paths, skipped = _walk(repo, max_bytes=5000)
    assert paths == KEPT
    assert list(skipped.values()).count("file name is not valid UTF-8") == 1


def test_outside_git_the_walk_honours_nested_gitignores(tmp_path: Path) -> None:
    root = tmp_path / "plain"
    root.mkdir()
    _tree(root)
    (root / "src/.gitignore").write_text("with space.py\n", encoding="utf-8")
    paths, skipped = _walk(root, max_bytes=5000)
    assert paths == [
        ".gitignore",
        "src/.gitignore",
        "src/app.py",
        "src/new\nline.txt",
        "src/日本語.md",
        "utf16.txt",
    ]
    assert "ignored.log" not in skipped and "src/with space.py" not in skipped
    assert skipped["node_modules/pkg/index.js"] == "vendored or generated"


def test_a_root_that_is_not_a_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BadRequest, match="not a directory"):
        list(iter_files(tmp_path / "missing"))


def test_files_in_odd_encodings_are_listed_and_read_without_error(tmp_path: Path) -> None:
    from core.rag.chunking import chunk_file, read_text

    root = tmp_path / "enc"
    root.mkdir()
    (root / "latin1.py").write_bytes("# café\nx = 'é'\n".encode("latin-1"))
    (root / "utf16.md").write_bytes("# 見出し\n本文\n".encode("utf-16"))
    (root / "bom.py").write_bytes(b"\xef\xbb\xbfdef f():\n    return 1\n")
    found = {f.path: f for f in iter_files(root)}
    assert sorted(found) == ["bom.py", "latin1.py", "utf16.md"]
    texts = {p: read_text(f.abspath) for p, f in found.items()}
    assert texts == {
        "bom.py": "def f():\n    return 1\n",
        "latin1.py": "# café\nx = 'é'\n",
        "utf16.md": "# 見出し\n本文\n",
    }
    assert [c.symbol for c in chunk_file("utf16.md", texts["utf16.md"] or "")] == ["見出し"]
    assert [c.signature for c in chunk_file("bom.py", texts["bom.py"] or "")] == ["def f():"]


def test_a_project_folder_inside_a_work_tree_uses_gits_list(repo: Path) -> None:
    (repo / "src/.hidden.log").write_text(
        "x\n", encoding="utf-8"
    )  # ignored by the repo-level *.log
    paths, _ = _walk(repo / "src")
    assert paths == ["app.py", "new\nline.txt", "with space.py", "日本語.md"]
