"""The start shared by project-scoped route handlers: the caller, its project, the permission check.

Index/search (:mod:`core.engine.routes_index`) and local embedder tuning
(:mod:`core.engine.routes_tune_embed`) act on one project of the caller's tenant; each handler
starts by resolving it and checking the permission there (a denial audited under ``action``).
"""

from __future__ import annotations

import os

from aiohttp import web

from core.engine import access
from core.engine.access import Caller
from core.engine.http import Api
from core.errors import BadRequest
from core.rag.service import not_found_project

READ = "search.query"  # the one read permission of these routes: checked as a read (not audited when granted)


async def project_caller(api: Api, request: web.Request, perm: str, action: str,
                         path: str | None = None) -> tuple[Caller, str]:
    """The caller and the project it acts on, once ``perm`` holds there.

    The project is the request's (``X-Musubi-Project`` or the client's working directory), or with
    ``path`` the registered project holding that absolute path.  No project: 404 naming how to get one.
    """
    e = api.r
    c = await api.ctx(request)
    if path:
        if not os.path.isabs(path):
            raise BadRequest(f"path {path!r} must be absolute.", field="path")
        c.project, _real = access.project_of_path(e.state, c.tenant, path)
        if c.project is None:
            raise not_found_project(c.tenant)
    project = c.project

    def check() -> None:
        e.require(c, perm, project=project, read=perm == READ)

    await e.run(c, action, f"project:{project or '-'}", check)
    if project is None:
        raise not_found_project(c.tenant)
    return c, project
