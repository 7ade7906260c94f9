"""The files snapshot: the scan reuses the hash of files unchanged since it, and only theirs (core/rag/snapshot.py)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from core.rag import prep, snapshot


def _age(path: Path, seconds: int = 60) -> None:
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns - seconds * 1_000_000_000))


def test_the_scan_reuses_hashes_of_unchanged_files_only(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "a.py").write_text("def a():\n    return 1\n")
    (root / "b.py").write_text("def b():\n    return 2\n")
    (root / "new.py").write_text("def n():\n    return 3\n")
    for name in ("a.py", "b.py"):
        _age(root / name)
    snap = tmp_path / "idx" / snapshot.FILE
    first, _ = prep.scan(str(root), 1 << 20, str(snap))
    sha = {p: h for p, h, _ in first}
    assert sha["a.py"] == hashlib.sha256((root / "a.py").read_bytes()).hexdigest()
    # a.py rewritten behind the snapshot's back with the same size and mtime: its recorded hash is
    # reused (proof that it was not read again). b.py gets a new mtime: read and hashed again.
    st = (root / "a.py").stat()
    (root / "a.py").write_text("def a():\n    return 9\n")
    os.utime(root / "a.py", ns=(st.st_atime_ns, st.st_mtime_ns))
    (root / "b.py").write_text("def b():\n    return 7\n")
    # new.py was modified within a second of the snapshot: never trusted, always read.
    (root / "new.py").write_text("def n():\n    return 8\n")
    os.utime(root / "new.py", ns=(snapshot.load(snap)[1], snapshot.load(snap)[1]))  # type: ignore[index]
    second, _ = prep.scan(str(root), 1 << 20, str(snap))
    got = {p: h for p, h, _ in second}
    assert got["a.py"] == sha["a.py"]
    assert got["b.py"] == hashlib.sha256((root / "b.py").read_bytes()).hexdigest() != sha["b.py"]
    assert got["new.py"] == hashlib.sha256((root / "new.py").read_bytes()).hexdigest()
    # Without a usable snapshot everything is read.
    snap.write_bytes(b"torn")
    third, _ = prep.scan(str(root), 1 << 20, str(snap))
    assert {p: h for p, h, _ in third}["a.py"] == hashlib.sha256((root / "a.py").read_bytes()).hexdigest()
