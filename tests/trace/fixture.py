"""Build the trace fixture repository in a temporary folder.

The readable files live in ``tests/fixtures/trace_repo``; the tricky ones
(CRLF, non-UTF-8 bytes, a file over ``max_file_bytes``, a binary file, symlinks
and a symlink loop, .gitignore'd files) are written here so git and editors
cannot normalise them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

STATIC = Path(__file__).resolve().parent.parent / "fixtures" / "trace_repo"


def build_repo(dest: Path, *, git: bool = True) -> Path:
    """Copy the fixture to ``dest`` (created), add the tricky files, optionally ``git init`` it."""
    shutil.copytree(STATIC, dest, ignore=shutil.ignore_patterns("conftest.py", "__pycache__"))
    (dest / "src" / "crlf.py").write_bytes(b"import os\r\n\r\n# Logout path: REQ-AUTH-002\r\nX = 1\r\n")
    (dest / "storage" / "specs" / "crlf.md").write_bytes(
        b"# CRLF spec\r\n\r\n## REQ-CRLF-001: Line endings\r\n\r\n"
        b"The Editor SHALL keep CRLF line endings of every file.\r\n\r\nPriority: P2\r\n\r\n"
        b"Acceptance Criteria:\r\n- A CRLF file stays CRLF after a save.\r\n"
    )
    (dest / "src" / "latin1.c").write_bytes(
        b"#include <stdio.h>\n/* Caf\xe9 pricing: REQ-BILL-002 \xff\xfe */\nint main(void) { return 0; }\n"
    )
    (dest / "src" / "huge.js").write_bytes(b"// REQ-BILL-002 in a file too large to scan\n" + b"x = 1;\n" * 20000)
    (dest / "src" / "blob.dat").write_bytes(b"\x00\x01binary REQ-BILL-002 \x00\xff" * 10)
    os.symlink("login.py", dest / "src" / "auth" / "login_link.py")
    os.symlink(".", dest / "src" / "loop")
    os.symlink("../..", dest / "src" / "billing" / "up")
    (dest / "build").mkdir()
    (dest / "build" / "generated.py").write_text("# REQ-AUTH-002 in a .gitignore'd folder\n")
    (dest / "debug.log").write_text("REQ-AUTH-002 in an ignored log\n")
    if git:
        env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x", "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}
        subprocess.run(["git", "init", "-q", str(dest)], check=True, env=env)
        subprocess.run(["git", "-C", str(dest), "-c", "core.autocrlf=false", "add", "-A"], check=True, env=env)
        subprocess.run(["git", "-C", str(dest), "commit", "-qm", "fixture"], check=True, env=env)
    return dest
