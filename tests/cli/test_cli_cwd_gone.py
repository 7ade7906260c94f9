"""``musubi`` run from a folder deleted underneath it: a clear message and exit 1, never "a bug in musubi"."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile

import pytest

from tests.cli.helpers import MUSUBI, base_env, short_home

GONE = "the current folder no longer exists: cd to an existing folder and run the command again."


def run_in_deleted_dir(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``musubi ARGS`` from a folder the shell removes just before starting it."""
    home, where = short_home(), tempfile.mkdtemp(prefix="gone", dir="/tmp")
    try:
        return subprocess.run(["sh", "-c", 'cd "$1" && rmdir "$1" && shift && exec "$@"', "sh", where, *MUSUBI, *args],
                              env=base_env(home), input="", capture_output=True, text=True, timeout=120)
    finally:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(where, ignore_errors=True)


@pytest.mark.parametrize("args", [("workflows", "list"), ("project", "add", "."), ("trace",)])
def test_a_deleted_working_folder_is_named_not_a_bug(args: tuple[str, ...]) -> None:
    p = run_in_deleted_dir(*args)
    assert p.returncode == 1, (p.stdout, p.stderr)
    assert GONE in p.stderr and "bug in musubi" not in p.stderr and "Traceback" not in p.stderr, p.stderr


def test_a_deleted_working_folder_answers_json() -> None:
    p = run_in_deleted_dir("workflows", "list", "--json")
    assert p.returncode == 1, (p.stdout, p.stderr)
    err = json.loads(p.stdout or p.stderr)["error"]
    assert err["code"] == "cwd_gone" and err["message"] == GONE, err
