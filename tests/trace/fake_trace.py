"""Fixed traceability answers for the TUI's fake engine (snapshots must not depend on a scan).

The data is the fixture repository's real report, rooted at ``/src/webshop``.
Regenerate after a deliberate change with ``python -m tests.trace.fake_trace``.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

from core.errors import NotFound

DATA = Path(__file__).resolve().parent / "data" / "webshop_trace.json"
ROOT = "/src/webshop"


@cache
def _data() -> dict[str, Any]:
    return dict(json.loads(DATA.read_text("utf-8")))


def answer(method: str, path: str, body: dict[str, Any] | None, query: dict[str, Any] | None) -> Any:
    """What the engine would answer for the trace routes, from the fixed data."""
    d = copy.deepcopy(_data())
    report = d["report"]
    # The engine always answers a diagnosis (None when the repository reads cleanly).
    report.setdefault("diagnosis", None)
    d["lint"].setdefault("diagnosis", None)
    if method == "POST" and path == "/v1/trace/review":
        rid = (body or {}).get("id")
        return {"id": rid, "fingerprint": "0" * 16, "previous_fingerprint": None, "by": "alice",
                "at": "2026-11-26T12:00:00Z", "was_suspect": False, "file": f"{ROOT}/storage/traceability/links.yml"}
    if method == "POST" and path == "/v1/trace/links":
        b = body or {}
        return {"requirement": b.get("requirement"), "kind": b.get("kind"), "target": b.get("target"),
                "source": b.get("source", "manual"), "state": b.get("state", "accepted"), "by": "alice",
                "at": "2026-11-26T12:00:00Z", "file": f"{ROOT}/storage/traceability/links.yml", "line": b.get("line")}
    if path == "/v1/trace":
        if (query or {}).get("view") in ("summary", "changes"):
            return {"root": report["root"], "scan": {**report["scan"], "read": 0, "parsed": 0}, "summary": report["summary"],
                    "diagnosis": report["diagnosis"]}
        return report
    if path == "/v1/spec/lint":
        return d["lint"]
    if path.startswith("/v1/trace/impact/"):
        rid = path.rsplit("/", 1)[1]
        if rid not in d["impact"]:
            raise NotFound(f"no requirement {rid!r} in {ROOT}.")
        return d["impact"][rid]
    raise NotFound(f"fake engine has no route {method} {path}")


def regenerate() -> None:
    import tempfile

    from core.trace.lint import lint_specs, lint_summary
    from core.trace.matrix import build
    from core.trace.scanner import scan
    from tests.trace.fixture import build_repo

    repo = build_repo(Path(tempfile.mkdtemp(prefix="ft")) / "webshop")
    s = scan(repo)
    t = build(s)
    lint = {"root": str(repo), "spec_files": len(s.specs), "requirements": len(t.rows),
            **lint_summary(lint_specs(s.specs, s.config.ids))}
    out = {"report": t.to_json(), "lint": lint, "impact": {rid: t.impact(rid) for rid in t.rows}}
    text = json.dumps(out, indent=1, ensure_ascii=False, sort_keys=True).replace(str(repo), ROOT)
    text = text.replace('"seconds": ', '"seconds_": ')  # drop the timing: it differs run to run
    data = json.loads(text)
    data["report"]["scan"].pop("seconds_", None)
    data["report"]["scan"]["seconds"] = 0.01
    DATA.write_text(json.dumps(data, indent=1, ensure_ascii=False, sort_keys=True) + "\n", "utf-8")


if __name__ == "__main__":
    regenerate()
