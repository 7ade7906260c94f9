"""Optional keys of the API's TypedDicts are really optional (``__required_keys__``)."""

from __future__ import annotations

import inspect
import typing

import msgspec
import pytest

from core.api import models as m
from core.api import responses as r


def test_audit_event_hashes_are_optional() -> None:
    assert {"prev_hash", "hash"} <= m.AuditEvent.__optional_keys__
    assert "prev_hash" not in m.AuditEvent.__required_keys__
    required = {"seq", "ts", "tenant_id", "actor", "action", "resource", "outcome", "details"}
    assert m.AuditEvent.__required_keys__ == required
    event = {"seq": 1, "ts": "2026-01-01T00:00:00.000000Z", "tenant_id": "t", "actor": "a", "action": "x.y",
             "resource": "r", "outcome": "success", "details": {}}
    assert msgspec.convert(event, m.AuditEvent) == event  # accepted without the hashes
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({k: v for k, v in event.items() if k != "seq"}, m.AuditEvent)


@pytest.mark.parametrize("module", [m, r], ids=lambda mod: mod.__name__)
def test_no_typeddict_hides_not_required_in_a_string(module: object) -> None:
    """``NotRequired`` written in a string annotation (``from __future__ import annotations``) is not honoured."""
    for name, cls in inspect.getmembers(module, typing.is_typeddict):
        for key, ann in cls.__annotations__.items():
            if isinstance(ann, str) and "NotRequired" in ann:
                pytest.fail(f"{name}.{key}: NotRequired in a string annotation counts as required; use total=False")
        hints = typing.get_type_hints(cls, include_extras=True)
        for key, hint in hints.items():
            if typing.get_origin(hint) is typing.NotRequired:
                assert key in cls.__optional_keys__, f"{name}.{key}"
