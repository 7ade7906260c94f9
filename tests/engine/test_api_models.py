"""The typed API models against the real engine: answers have the response shapes, requests parse as documented."""

from __future__ import annotations

import typing
from typing import Any

import msgspec
import pytest

from core.api import models as m
from core.engine.engine import Engine
from core.engine.server import all_routes
from core.errors import BadRequest
from core.rbac import PERMISSIONS

from .helpers import Home


def _exactly(answer: Any, shape: Any) -> None:
    """``answer`` converts to ``shape`` (types checked) and has no key the shape does not name."""
    msgspec.convert(answer, shape)
    items = answer if typing.get_origin(shape) is list else [answer]
    inner = typing.get_args(shape)[0] if typing.get_origin(shape) is list else shape
    for item in items:
        assert set(item) <= set(typing.get_type_hints(inner)), sorted(
            set(item) - set(typing.get_type_hints(inner))
        )


def test_real_answers_have_the_response_shapes(eng: Home) -> None:
    t = eng.new_tenant("am")
    c = eng.client(t)
    c.put("/v1/quotas", {"metric": "tokens", "limit": 10_000, "period": "day", "alerts": [0.5]})
    shapes = {
        ("GET", "/v1/health"): (c.get("/v1/health"), m.Health),
        ("GET", "/v1/whoami"): (c.get("/v1/whoami"), m.Whoami),
        ("POST", "/v1/usage"): (
            c.post("/v1/usage", {"model": "gpt-4o", "input_tokens": 5, "cost_usd": "0.01"}),
            m.UsageRecorded,
        ),
        ("GET", "/v1/quotas"): (c.get("/v1/quotas"), m.QuotaStatus),
        ("PUT", "/v1/quotas"): (
            c.put("/v1/quotas", {"metric": "cost_usd", "limit": "5", "period": "month"}),
            m.QuotaRow,
        ),
        ("GET", "/v1/audit"): (c.get("/v1/audit?limit=5"), list[m.AuditEvent]),
    }
    rid = c.post("/v1/reservations", {"tokens": 10})
    shapes[("POST", "/v1/reservations")] = (rid, m.Reserved)
    shapes[("POST", "/v1/reservations/{rid}/release")] = (
        c.post(f"/v1/reservations/{rid['reservation_id']}/release", {}),
        m.Released,
    )
    typed = {(r.method, r.path): r.response for r in all_routes() if r.response is not None}
    assert set(typed) - {("POST", "/v1/engine/stop")} == set(
        shapes
    )  # every typed answer is checked here
    for key, (answer, shape) in shapes.items():
        assert typed[key] == shape
        _exactly(answer, shape)
    assert shapes[("GET", "/v1/quotas")][0]["quotas"], (
        "the quota row shape was checked on a real row"
    )


def test_a_wrong_shape_is_caught() -> None:
    with pytest.raises(msgspec.ValidationError):
        _exactly({"reservation_id": "rsv_1", "released": "yes"}, m.Released)
    with pytest.raises(AssertionError):
        _exactly({"reservation_id": "rsv_1", "released": True, "extra": 1}, m.Released)


def test_defaults_live_in_the_request_model() -> None:
    r = m.parse(m.UsageRecord, {"model": "gpt-4o"})
    assert r.args() == {
        "model": "gpt-4o",
        "input_tokens": 0,
        "output_tokens": 0,
        "requests": 1,
        "cost_micros": 0,
        "task_kind": None,
    }
    assert (
        m.parse(m.UsageRecord, {"model": "x", "requests": None}).requests == 1
    )  # null: the default
    assert m.parse(m.Reserve, {}).args()["ttl_s"] == m.DEFAULT_TTL_S
    assert (
        m.parse(m.UsageRecord, {"model": "x", "input_tokens": "1_000", "cost_usd": "0.5"}).args()[
            "cost_micros"
        ]
        == 500_000
    )


@pytest.mark.parametrize(
    ("model", "data", "field", "says"),
    [
        (m.UsageRecord, {"model": "x", "input_tokens": -1}, "input_tokens", "is negative"),
        (
            m.UsageRecord,
            {"model": "x", "input_tokens": [1]},
            "input_tokens",
            "is not a whole number",
        ),
        (m.UsageRecord, {}, "model", "pass --model NAME"),
        (m.Settle, {}, "rid", "rid is missing"),
        (m.RoleCreate, {"name": 5}, "name", "name must be a string (got int)"),
        (m.MemberRemove, {"user": "u", "project": ["p"]}, "project", "project must be a string"),
        (m.ProjectAdd, {"path": "/x", "shared": "yes"}, "shared", "shared must be true or false"),
        (m.AuditCheckpoint, {"path": 5}, "path", "path must be a string"),
    ],
)
def test_refusals_are_bad_requests_naming_the_field(
    model: type[m.Request], data: dict[str, Any], field: str, says: str
) -> None:
    with pytest.raises(BadRequest) as exc:
        m.parse(model, data)
    assert exc.value.extra["field"] == field
    assert says in exc.value.message


def test_every_route_names_a_real_operation_and_permission() -> None:
    special = {"open", "member", "system", "engine"}
    for r in all_routes():
        assert (r.op is None) != (r.handler is None), (
            f"{r.method} {r.path}: an op or a handler, not both"
        )
        if r.op is not None:
            assert callable(getattr(Engine, r.op, None)), (
                f"{r.method} {r.path}: no operation Engine.{r.op}"
            )
            args = set(r.request.__struct_fields__) - {"__none__"}
            params = set(typing.get_type_hints(getattr(Engine, r.op))) - {"ctx", "return"}
            renamed = {r.request.RENAME.get(a, a) for a in args}
            if r.request not in (
                m.AuditList,
                m.RoleCreate,
                m.AuditCheckpoint,
            ):  # these map their own args
                assert renamed <= params, (
                    f"{r.method} {r.path}: {sorted(renamed - params)} are not arguments of {r.op}"
                )
        assert r.permission in special or r.permission in PERMISSIONS, (
            f"{r.method} {r.path}: {r.permission}"
        )
