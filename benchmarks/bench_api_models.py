"""Request models on the engine's hot path: hand-written checks vs pydantic vs msgspec.

Per request of the load mix (usage record, quota status, audit list): decode the
body (or take the query), validate it into typed values with the messages of
core/limits.py, and encode a typical answer.  All three variants call the same
core/limits.py checks for the numeric fields (that is where the messages and
ranges live); what differs is the framework around them.  The hand-written
variant is what the engine did before core/api/models.py; the msgspec one is
core/api/models.py itself; the pydantic one is the same model written with
pydantic v2 (``PlainValidator`` fields), as it was first drafted.

Also measures import times in a fresh interpreter, which matter to CLI start-up:
each library, core/api/models.py, and pydantic building 40 models of 5
validated fields (about what the API's request models are).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._util import table  # noqa: E402
from core import limits  # noqa: E402
from core.api import models as m  # noqa: E402
from core.engine.http import _DECODER  # noqa: E402
from core.engine.jsontext import ANSWER  # noqa: E402

USAGE = json.dumps({"model": "gpt-4o", "input_tokens": 1234, "output_tokens": 321})
QUOTA_Q = {"user": "alice"}
AUDIT_Q = {"limit": "20", "outcome": "success"}
USAGE_ANSWER = {
    "recorded": True,
    "tenant": "t1",
    "user": "u",
    "model": "gpt-4o",
    "tokens": 1555,
    "requests": 1,
    "cost_usd": "0",
    "entry_id": "e_0123456789abcdef",
    "ts": "2026-01-01T00:00:00.000000Z",
}
QUOTA_ANSWER = {"tenant": "t1", "user": "u", "quotas": [], "tightest": None}


def hand_usage() -> Any:
    b = _DECODER.decode(USAGE)
    model = b.get("model", "")
    if not model or not isinstance(model, str) or len(model) > limits.MAX_MODEL_LEN:
        raise ValueError
    i = limits.count(b.get("input_tokens", 0), "input_tokens", limits.TOKENS)
    o = limits.count(b.get("output_tokens", 0), "output_tokens", limits.TOKENS)
    r = limits.count(b.get("requests", 1), "requests", limits.REQUESTS)
    c = b.get("cost_usd")
    c = limits.dollars(c, "cost_usd", limits.COST) if c not in (None, "") else 0
    return ANSWER.encode(USAGE_ANSWER), (model, i, o, r, c)


def msgspec_usage() -> Any:
    req = m.parse(m.UsageRecord, _DECODER.decode(USAGE))
    return ANSWER.encode(USAGE_ANSWER), req.args()


def hand_quota() -> Any:
    return ANSWER.encode(QUOTA_ANSWER), QUOTA_Q.get("user") or None


def msgspec_quota() -> Any:
    return ANSWER.encode(QUOTA_ANSWER), m.parse(m.QuotaStatusQuery, dict(QUOTA_Q)).args()


def hand_audit() -> Any:
    return dict(AUDIT_Q)


def msgspec_audit() -> Any:
    return m.parse(m.AuditList, dict(AUDIT_Q)).args()


def pydantic_variants() -> dict[str, Callable[[], Any]]:
    from pydantic import BaseModel, ConfigDict, PlainValidator, ValidationInfo, create_model

    def count(r: limits.Range, none_is: int | None = None) -> Any:
        def check(v: object, info: ValidationInfo) -> int:
            return limits.count(
                none_is if v is None and none_is is not None else v, str(info.field_name), r
            )

        return PlainValidator(check)

    def dollars(v: object, info: ValidationInfo) -> int:
        return 0 if v in (None, "") else limits.dollars(v, str(info.field_name), limits.COST)

    class Base(BaseModel):
        model_config = ConfigDict(extra="ignore", frozen=True)

        def args(self) -> dict[str, Any]:
            return {k: getattr(self, k) for k in type(self).model_fields}

    class UsageRecord(Base):
        model: str
        input_tokens: Annotated[int, count(limits.TOKENS)] = 0
        output_tokens: Annotated[int, count(limits.TOKENS)] = 0
        requests: Annotated[int, count(limits.REQUESTS, 1)] = 1
        cost_usd: Annotated[int, PlainValidator(dollars)] = 0
        task_kind: Any = None

    class QuotaQ(Base):
        user: str | None = None

    audit_fields: dict[str, Any] = {f: (str | None, None) for f in m.fields(m.AuditList)}
    AuditQ = create_model("AuditQ", __base__=Base, **audit_fields)  # noqa: N806

    return {
        "usage record": lambda: (
            ANSWER.encode(USAGE_ANSWER),
            UsageRecord.model_validate(_DECODER.decode(USAGE)).args(),
        ),
        "quota status": lambda: (
            ANSWER.encode(QUOTA_ANSWER),
            QuotaQ.model_validate(dict(QUOTA_Q)).args(),
        ),
        "audit list": lambda: AuditQ.model_validate(dict(AUDIT_Q)).args(),
    }


PYDANTIC_40_MODELS = """
from typing import Annotated
from pydantic import BaseModel, PlainValidator
def check(v, info):
    return v
F = Annotated[int, PlainValidator(check)]
for i in range(40):
    type(f"M{i}", (BaseModel,), {"__annotations__": {f"f{j}": F for j in range(5)}, **{f"f{j}": 0 for j in range(5)}})
"""


def per_call_us(fn: Callable[[], Any], n: int = 20_000) -> float:
    best = float("inf")
    for _ in range(5):  # best of 5: this machine is shared
        t0 = time.perf_counter()
        for _ in range(n):
            fn()
        best = min(best, (time.perf_counter() - t0) / n * 1e6)
    return best


def import_ms(module: str) -> float:
    code = (
        f"import time; t=time.perf_counter(); import {module}; print((time.perf_counter()-t)*1000)"
    )
    runs = [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, check=True
            ).stdout
        )
        for _ in range(3)
    ]
    return min(runs)


def main() -> None:
    pyd = pydantic_variants()
    rows = []
    for name, hand, ms in (
        ("usage record", hand_usage, msgspec_usage),
        ("quota status", hand_quota, msgspec_quota),
        ("audit list", hand_audit, msgspec_audit),
    ):
        h, s, p = per_call_us(hand), per_call_us(ms), per_call_us(pyd[name])
        rows.append([name, h, s, p, s / h, p / h])
    print(
        table(
            "Request decode + validate + encode, µs per request (best of 5)",
            ["request", "hand-written", "msgspec", "pydantic", "msgspec / hand", "pydantic / hand"],
            rows,
        )
    )
    imports = [
        ["msgspec", import_ms("msgspec")],
        ["pydantic", import_ms("pydantic")],
        ["core.api.models (msgspec)", import_ms("core.api.models")],
        ["pydantic + 40 models", import_ms(f"pydantic; exec({PYDANTIC_40_MODELS!r})")],
    ]
    print(table("Import time, ms (fresh interpreter, best of 3)", ["module", "ms"], imports))


if __name__ == "__main__":
    main()
