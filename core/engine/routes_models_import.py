"""``POST /v1/models/import``: refresh prices from a LiteLLM-format table into a registry override.

The client sends the table (the CLI reads the file or fetches the URL, only when
asked, and slims it to the rows an import uses).  The engine maps it onto the
caller's registry, answers the diff (new models, changed prices, windows and
dates, models the table no longer lists) and, unless ``dry_run``, stores it:

- ``scope: "tenant"`` (default): the tenant's override; needs ``quotas.manage`` in the
  tenant (the permission that pins the tenant's models);
- ``scope: "user"``: the engine owner's override, for every tenant; needs the system
  role (``tenant.manage`` in the system tenant).

Every stored import is audited (``models.import``, with the counts and the source);
a dry run needs only ``quotas.read`` and changes nothing.  An import whose result
does not load (say, a replacement that names no model) is refused before anything
is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from core.api import models as m
from core.engine import access
from core.engine.http import json_response
from core.errors import BadRequest, PermissionDenied
from core.models.importer import plan_import
from core.models.overrides import merge_entries
from core.models.registry import ConfigError, load_registry, read_config

if TYPE_CHECKING:
    from core.engine.routes_models import ModelRoutes

async def import_table(routes: ModelRoutes, request: web.Request, req: m.ModelsImport) -> web.Response:
    """``POST /v1/models/import``: merge a LiteLLM-format table into the tenant's or the owner's override."""
    e = routes.api.r
    c = await routes.api.ctx(request)
    scope, dry, source = req.scope, req.dry_run, req.source
    today = routes.today()
    tenant = c.tenant if scope == "tenant" else None

    def check() -> None:
        if dry:
            e.require(c, "quotas.read", read=True)
        elif scope == "tenant":
            e.require(c, "quotas.manage")
        elif not access.is_system_admin(e.state, c.user):
            raise PermissionDenied(
                "permission denied: importing into the engine owner's registry (scope user) needs the system "
                "role (tenant.manage in the system tenant); a tenant admin can import for the tenant: "
                "musubi models import FILE (scope tenant).", permission="tenant.manage")

    await e.run(c, "models.import", f"models:{scope}", check)
    # From here to the write there is no await: no other request of this engine can change the
    # override between reading it, merging, validating and writing it (e.run calls op at once).
    reg = routes.registry(c.tenant)
    plan = plan_import(reg, req.table, source, today)
    stored = routes.overrides.read(scope, tenant)
    merged = merge_entries(stored["entries"], plan["entries"])
    # Refuse before writing when the result would not load (the stored file must always load).
    cfg_path = routes.config_path()
    overlays = [(str(routes.overrides.path("user")), merged if scope == "user" else
                 routes.overrides.read("user")["entries"])]
    if scope == "tenant":
        overlays.append((str(routes.overrides.path("tenant", c.tenant)), merged))
    try:
        load_registry(read_config(cfg_path), cfg_path, overlays)
    except ConfigError as exc:
        raise BadRequest(f"the imported table does not fit the registry: {exc.message}", field="table") from None
    result: dict[str, Any] = {k: plan[k] for k in ("source", "new", "changed", "removed", "unchanged", "skipped")}
    result.update({"scope": scope, "tenant": c.tenant, "dry_run": dry,
                   "override": str(routes.overrides.path(scope, tenant))})
    if dry or not plan["entries"]:
        result["written"] = False
        return json_response(result)

    def op() -> dict[str, Any]:
        check()
        imported = [*stored.get("imported", []), {"source": plan["source"], "at": e.now().isoformat(),
                                                 "by": c.user, "models": [x["id"] for x in plan["entries"]]}]
        routes.overrides.write(scope, tenant, {"entries": merged, "imported": imported[-50:]})
        e.audit(c.tenant, c, "models.import", f"models:{scope}", details={
            "source": plan["source"], "scope": scope, "new": [x["model"] for x in plan["new"]],
            "changed": [x["model"] for x in plan["changed"]], "removed": [x["model"] for x in plan["removed"]]})
        return {**result, "written": True}

    return json_response(await e.run(c, "models.import", f"models:{scope}", op))
