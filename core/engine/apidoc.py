"""The line docs/api.md carries under each route's heading, made from the route table.

``python -m core.engine.apidoc`` prints every route's line;
tests/docs/test_api_routes.py checks that each section carries the line its
route's request and response models make, so the documented fields cannot drift
from the models (core/api/models.py).
"""

from __future__ import annotations

import re
import typing

from core.api.models import fields
from core.engine.routing import Route

_PARAM = re.compile(r"\{(\w+)")


def model_line(route: Route) -> str:
    """``Request `Model`: body `a`, `b`; path `x`. Answer `Shape`.`` for one route."""
    path_params = _PARAM.findall(route.path)
    own = [f for f in fields(route.request) if f not in path_params]
    where = "body" if route.reads_body() else "query"
    parts = [f"{where} " + ", ".join(f"`{f}`" for f in own)] if own else []
    if path_params:
        parts.append("path " + ", ".join(f"`{p}`" for p in path_params))
    line = f"Request `{route.request.__name__}`: " + ("; ".join(parts) if parts else "no fields") + "."
    if route.response is not None:
        line += f" Answer `{response_name(route.response)}`."
    return line


def response_name(shape: object) -> str:
    """``UsageRecorded``, or ``list[AuditEvent]`` for a list of them."""
    if typing.get_origin(shape) is list:
        (item,) = typing.get_args(shape)
        return f"list[{item.__name__}]"
    return str(getattr(shape, "__name__", shape))


if __name__ == "__main__":
    from core.engine.server import all_routes

    for r in all_routes():
        print(f"{r.method} {r.path}: {model_line(r)}")
