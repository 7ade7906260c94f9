"""``GET /v1/tune/embedders`` for the TUI's fake engine (issue 19, Search ▸ v): fixed versions for snapshots.

Off unless a test sets ``FakeEngineApi.tune`` (an engine without the routes answers 404, which hides
the Search screen's embedder line, as older engines do).  The shapes are core/api/tune_embed.py's;
the writes (tune, activate, roll back) are tested on the real engine (tests/tui/test_search_embedder.py),
so the fake refuses them the way the engine refuses a job while one runs.
"""

from __future__ import annotations

from typing import Any

from core.errors import Conflict, NotFound

Json = dict[str, Any]


def version(n: int, state: str, current: tuple[float, float, float], tuned: tuple[float, float, float],
            decision: str, created_at: str) -> Json:
    """A version as ``GET /v1/tune/embedders`` lists it."""
    def m(t: tuple[float, float, float]) -> Json:
        return {"r1": t[0], "r10": t[1], "mrr": t[2]}

    return {"version": n, "state": state, "model_id": f"model@{n:06d}", "base_model": "all-MiniLM-L6-v2",
            "job_id": f"j-00000000000{n}", "pairs": {"train": {"link": 4, "docstring": 212, "commit": 61},
                                                     "held_out": {"link": 1, "docstring": 48, "commit": 17},
                                                     "found": {"link": 5, "docstring": 266, "commit": 80},
                                                     "files": {"train": 31, "held_out": 8}, "notes": []},
            "pairs_sha256": f"{n:064x}", "params": {"budget_s": 600}, "current": m(current), "tuned": m(tuned),
            "steps": 9, "seconds": 212.0, "decision": decision, "created_by": "alice", "created_at": created_at,
            "activated_at": created_at if state in ("active", "retired") else None,
            "vectors_bytes": 1_572_864 if state == "active" else None, "files_bytes": 91_226_112}


class FakeTune:
    """Two versions of project webshop: v2 kept out by the rule, v1 serving."""

    def __init__(self) -> None:
        self.serving = 1
        self.job: Json | None = None
        self.versions = [
            version(2, "rejected", (0.55, 0.861, 0.66), (0.56, 0.864, 0.67),
                    "kept the current model: R@10 0.861 -> 0.864 (+0.003), MRR 0.660 -> 0.670; "
                    "R@10 must rise by at least 0.01", "2026-01-15T14:10:00.000000Z"),
            version(1, "active", (0.48, 0.812, 0.60), (0.55, 0.861, 0.66),
                    "activated: R@10 0.812 -> 0.861 (+0.049), MRR 0.600 -> 0.660", "2026-01-14T09:30:00.000000Z"),
        ]

    def answer(self, method: str, path: str, project: str | None) -> Any:
        if project is None:
            raise NotFound("no registered project here: musubi project add PATH", resource="project")
        if method == "GET" and path == "/v1/tune/embedders":
            return {"project": project, "serving": self.serving, "versions": self.versions, "job": self.job,
                    "base_vectors_bytes": None}
        if method == "DELETE" and path.startswith("/v1/tune/embedders/"):
            return self.delete(project, int(path.rsplit("/", 1)[1]))
        if method == "POST" and path.startswith("/v1/tune/embedders"):
            raise Conflict("project webshop already has a tuning or activation job running (j-000000000009); "
                           "wait for it or cancel it: musubi jobs cancel j-000000000009")
        raise NotFound(f"fake engine has no route {method} {path}")

    def delete(self, project: str, n: int) -> Json:
        """``DELETE /v1/tune/embedders/{n}`` as the engine answers it: the row stays, ``deleted``, with no bytes."""
        v = next((v for v in self.versions if v["version"] == n), None)
        if v is None:
            raise NotFound(f"project {project!r} has no tuned embedder version {n}. See: musubi tune list")
        if n == self.serving:
            raise Conflict(f"version {n} serves search in project {project!r}: roll back first")
        freed = v["files_bytes"] + (v["vectors_bytes"] or 0)
        v.update(state="deleted", files_bytes=0, vectors_bytes=None)
        return {"project": project, "version": n, "state": "deleted", "freed_bytes": freed}
