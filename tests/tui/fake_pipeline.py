"""``GET /v1/runs/{id}/pipeline`` for the TUI's fake engine (issue 17 gaps): fixed answers in the engine's shape.

The first fixed run (RUN_A of tests/tui/fake_runs.py) built on ``feature/login`` and its GitLab
pipeline passed; the others recorded no ref (so ``no_ref``).  Tests change ``FakeRuns.pipelines``
per run, or put an exception there to have the route refuse.
"""

from __future__ import annotations

from typing import Any

Json = dict[str, Any]


def fixed(run_a: str) -> dict[str, Json | Exception]:
    """Run id -> the engine's answer (or the error it raises)."""
    return {run_a: {"run": run_a, "state": "passed", "system": "gitlab", "ref": "feature/login", "sha": "3f2a" * 10,
                    "source": "git", "message": "ci 77: success",
                    "pipeline": {"system": "gitlab", "id": "77", "ref": "feature/login", "state": "success",
                                 "vendor_status": "success", "url": "https://gitlab.example/acme/app/-/pipelines/77",
                                 "sha": "3f2a" * 10, "name": "ci"}}}


def answer(answers: dict[str, Json | Exception], rid: str) -> Json:
    got = answers.get(rid)
    if isinstance(got, Exception):
        raise got
    if got is None:
        return {"run": rid, "state": "no_ref", "system": "gitlab", "ref": None, "sha": None, "source": None,
                "pipeline": None, "message": "this run recorded no git ref (its project is not a git repository, or "
                f"it ran outside a project); link one with: musubi integrations link-run {rid} BRANCH"}
    return dict(got)
