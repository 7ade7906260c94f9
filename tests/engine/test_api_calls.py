"""The typed client calls (core/api/calls.py) against the engine's route table.

Every call a client can send must reach a real route, send only the fields that route's
request model declares, and promise the answer type the route declares: a renamed field,
a moved route or a changed answer shape fails here, not in front of a user.
"""

from __future__ import annotations

import inspect
import typing
from collections.abc import Callable
from typing import Any

import pytest

from core.api import calls, integrations, models, responses, sso
from core.api import inbound as inbound_api
from core.api import runs as runs_api
from core.api import sessions as session_api
from core.api import tune_embed as tune_embed_api
from core.api import tutorials as tutorials_api
from core.api.calls import Call
from core.errors import BadRequest
from tests.tui.contract import route_for

# Values for parameters whose type alone does not give a valid one.
SAMPLES: dict[str, Any] = {
    "alerts": [0.8], "permissions": ["quotas.read"], "anchor": {"kind": "checkpoint"}, "limit": 5,
    "shared": True, "system": True, "line": 3, "input_tokens": 10, "output_tokens": 5, "requests": 1,
    "since_hours": 24, "models": ["gpt-4o"], "paths": ["/src/a.py"], "retrieval_tokens": 0, "cache": True,
    "k": 10, "force": True, "decision": "approve",
    "required": True,  # identity / SSO
}
# Routes a client already calls whose engine side is still being built (issue 11, the i11-wire branch):
# a call to one of these is skipped while the engine has no such route, and checked like any other once
# it has.  Any other call without a route fails.
HINTS = {**vars(typing), **vars(models), **vars(responses), **vars(sso), **vars(calls), **vars(runs_api),
         **vars(integrations)}
# Remote sessions keep their models in their own module (docs/remote.md).
HINTS.update(vars(session_api))
SAMPLES.update({"purpose": "ssh", "mode": "ssh", "event": "login", "ttl_s": 60})
# notify (issue 17): inbound and user-mapping models live in core/api/inbound.py
HINTS.update(vars(inbound_api))
# tutorials (issue 18): core/api/tutorials.py; tutorial and step ids are slugs ("x" is one)
HINTS.update(vars(tutorials_api))
SAMPLES.update({"audit_text": True})  # runs gaps (issue 12): the audit-text switch
# local embedder (issue 19): models in core/api/tune_embed.py
HINTS.update(vars(tune_embed_api))
SAMPLES.update({"budget_s": 600, "version": 0})


def _builders() -> list[Callable[..., Call[Any]]]:
    """Every function of core.api.calls that builds one route's call (not the verb helpers)."""
    out = []
    for name, fn in vars(calls).items():
        if inspect.isfunction(fn) and fn.__module__ == calls.__name__ and not name.startswith("_"):
            ret = typing.get_type_hints(fn, globalns=HINTS).get("return")
            if typing.get_origin(ret) is Call and typing.get_args(ret) != (Any,):
                out.append(fn)
    return out


def _sample_call(fn: Callable[..., Call[Any]]) -> Call[Any]:
    kwargs: dict[str, Any] = {}
    for p in inspect.signature(fn).parameters.values():
        if p.kind is p.VAR_KEYWORD:
            kwargs.update(actor="alice", outcome="denied")
        else:
            kwargs[p.name] = SAMPLES.get(p.name, "x")
    return fn(**kwargs)


BUILDERS = _builders()


def test_every_route_the_tui_and_cli_use_has_a_call() -> None:
    assert len(BUILDERS) >= 30
    assert {f.__name__ for f in BUILDERS} >= {
        "whoami", "tenants", "tenant_create", "members", "member_add", "member_remove", "roles", "role_show",
        "quota_status", "quota_set", "quota_remove", "usage_record", "audit_list", "audit_verify", "trace_report",
        "models_list",
    }


@pytest.mark.parametrize("fn", BUILDERS, ids=lambda f: f.__name__)
def test_a_call_reaches_its_route_with_its_models_fields_and_answer(fn: Callable[..., Call[Any]]) -> None:
    call = _sample_call(fn)
    route = route_for(call.method, call.path)
    sent = set(call.body or {}) | set(call.query or {})
    assert sent <= set(models.fields(route.request)), f"{fn.__name__} sends fields {route.request.__name__} lacks"
    assert (call.body is not None) == (call.method in ("POST", "PUT")), "POST and PUT carry a JSON body, others none"
    (answer,) = typing.get_args(typing.get_type_hints(fn, globalns=HINTS)["return"])
    assert answer == route.response, f"{fn.__name__} promises {answer}, the route answers {route.response}"


def test_empty_values_are_left_to_the_engines_defaults() -> None:
    call = calls.member_add("bob", "member")
    assert call.body == {"user": "bob", "role": "member"}  # no "project": null: the engine's default applies
    assert calls.quota_status().query is None
    assert calls.member_remove("a/b").path == "/v1/members/a%2Fb"  # a name is one path segment
    with pytest.raises(BadRequest, match="empty") as bad:  # "/v1/runs/" would be another route
        calls.run_show("")
    assert bad.value.exit_code == 2


def test_a_misnamed_field_is_caught() -> None:
    """The check above can fail: a call sending a field its route's model does not declare."""
    call = calls.post("/v1/members", user="bob", rol="member")
    assert not set(call.body or {}) <= set(models.fields(route_for(call.method, call.path).request))
