"""Tutorial sandboxes: a throw-away tenant and project folder per user and tutorial (issue 18).

A sandbox is the tenant ``tut-<user>-<tutorial>`` (``-2``, ``-3``, ... for later ones: a cleaned
sandbox's tenant keeps its name and its audit chain) owned by the user, with the tenant's default
quotas, and one project: a copy of a sample repository shipped as package data
(``tutorials/sample/<sample>``) in ``$MUSUBI_HOME/sandboxes/<tenant>/<sample>``.  The engine
makes it on the user's behalf (no ``tenant.manage`` needed: it is the user's own scratch space)
and registers the folder directly (a project inside the engine's home is refused to users, on
purpose, so only the engine can make one there).  It never touches another tenant or folder:
every event it writes is in the sandbox tenant's own chain.

Cleaning (on reset and when the tutorial is finished) first cancels the sandbox's runs and jobs still
going (as its owner, audited ``run.cancel``/``job.cancel`` in its chain), then unregisters the project, suspends the
tenant (reason ``tutorial sandbox cleaned``) and deletes the folder.  The tenant itself stays,
suspended, so its audit chain stays verifiable; the next sandbox gets the next name.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.audit import format_ts
from core.engine.access import Caller
from core.errors import MusubiError
from core.names import TENANT_RE
from core.storage.base import Delete, Insert, Update

if TYPE_CHECKING:
    from core.engine.runner import OpRunner
    from core.engine.tenancy import TenancyService
    from core.jobs.service import JobService
    from core.orchestration.service import RunService

log = logging.getLogger(__name__)
SANDBOXES = "sandboxes"
CLEANED = "tutorial sandbox cleaned"
MAX_SANDBOXES = 1000  # generations per user and tutorial: a loop guard, never reached by hand


def _slug(text: str, limit: int) -> str:
    s = re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:limit].strip("-")
    return s or "x"


def sandbox_name(user: str, tutorial: str, generation: int) -> str:
    """``tut-<user>-<tutorial>`` (generation 1), else with ``-<generation>``; always a valid tenant name.

    A user name that is not already a slug (``Alice.Smith``) gets a short hash so two such users
    never share a name."""
    u = _slug(user, 20)
    if u != user:
        u = f"{u[:13]}-{hashlib.sha256(user.encode()).hexdigest()[:6]}"
    name = f"tut-{u}-{_slug(tutorial, 30)}"
    if generation > 1:
        name += f"-{generation}"
    assert TENANT_RE.fullmatch(name), name
    return name


def _copy_sample(src: Path, dest: Path) -> None:
    """Copy the sample to ``dest`` (replaced if there), writable by the engine's user whatever the install's modes."""
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copytree(src, dest, copy_function=shutil.copyfile,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
    for root, dirs, files in os.walk(dest):
        for d in dirs:
            os.chmod(os.path.join(root, d), 0o755)
        for f in files:
            os.chmod(os.path.join(root, f), 0o644)
    os.chmod(dest, 0o755)


class SandboxService:
    """Makes and cleans sandboxes; the tutorial service (core/engine/tutorials.py) decides when."""

    def __init__(self, runner: OpRunner, tenancy: TenancyService, samples: Path) -> None:
        self.r = runner
        self.tenancy = tenancy
        self.samples = samples
        self.runs: RunService | None = None  # set by the engine: what cleaning cancels (stop_activity)
        self.jobs: JobService | None = None

    @property
    def root(self) -> Path:
        return Path(self.r.paths.home) / SANDBOXES

    def free_generation(self, user: str, tutorial: str, after: int) -> int:
        """The first generation above ``after`` whose tenant name is not taken."""
        g = after + 1
        while sandbox_name(user, tutorial, g) in self.r.state.tenants:
            g += 1
            if g > after + MAX_SANDBOXES:
                raise MusubiError(f"no free sandbox name for {user}/{tutorial}; a system owner can clean up "
                                  "old tut-* tenants.", code="sandbox_names")
        return g

    def folder(self, tenant: str, sample: str) -> Path:
        return self.root / tenant / sample

    async def prepare_folder(self, tenant: str, sample: str) -> Path:
        """Copy the sample into the sandbox folder (before the op that registers it: a failed copy changes nothing)."""
        import asyncio

        src = self.samples / sample
        if not src.is_dir():
            raise MusubiError(f"the sample repository {sample!r} is not installed ({src} is missing); "
                              "reinstall musubi-workstation.", code="sample_missing")
        dest = self.folder(tenant, sample)
        await asyncio.to_thread(_copy_sample, src, dest)
        return dest

    def create(self, ctx: Caller, tenant: str, sample: str, path: Path, tutorial: str) -> dict[str, Any]:
        """Inside an op: the tenant (owned by ``ctx.user``), its project, the audit events, in the sandbox only."""
        me = replace(ctx, tenant=tenant, project=None)
        self.tenancy._create_tenant(tenant, ctx.user, me)
        now = self.r.now()
        real = os.path.realpath(path)
        self.r.state.projects[tenant][sample] = {"name": sample, "path": real}
        self.r.write(Insert("projects", {"tenant_id": tenant, "name": sample, "path": real, "created_at": now,
                                         "created_by": ctx.user}))
        self.r.audit(tenant, me, "project.add", f"project:{sample}", details={"path": real, "sandbox": tutorial})
        return {"tenant": tenant, "project": sample, "path": real, "created_at": format_ts(now)}

    def exists(self, sandbox: dict[str, Any] | None) -> bool:
        """Whether the sandbox is whole: its tenant active with its project, its folder there."""
        if not sandbox:
            return False
        t = self.r.state.tenants.get(sandbox["tenant"])
        return (t is not None and t.status == "active"
                and sandbox["project"] in self.r.state.projects.get(sandbox["tenant"], {})
                and Path(sandbox["path"]).is_dir())

    async def stop_activity(self, ctx: Caller, tenant: str) -> list[str]:
        """Cancel the sandbox tenant's unfinished runs, then its jobs still queued or running (``run:ID``/``job:ID``).

        Called before cleaning, while the tenant is still active (a suspended tenant refuses writes, a cancel
        included), as the sandbox's owner: each cancel is its own audited op in the sandbox's chain.  A cancel
        that is refused (the run or job ended meanwhile) is logged and left."""
        from core.api.runs import FINAL_STATES
        from core.jobs.model import TERMINAL

        t = self.r.state.tenants.get(tenant)
        if t is None or t.status != "active":
            return []
        me = replace(ctx, tenant=tenant, project=None)
        stopped: list[str] = []
        for d in list(self.runs.data.values()) if self.runs is not None else []:
            if d.run.tenant == tenant and d.run.state not in FINAL_STATES:
                try:
                    await self.runs.cancel(me, d.run.id)  # type: ignore[union-attr]
                    stopped.append(f"run:{d.run.id}")
                except MusubiError as exc:
                    log.warning("sandbox %s: run %s not cancelled: %s", tenant, d.run.id, exc.message)
        for j in list(self.jobs.jobs.values()) if self.jobs is not None else []:
            if j.tenant == tenant and j.state not in TERMINAL and j.state != "cancelling":
                with contextlib.suppress(MusubiError):  # e.g. its run's cancel ended it just now
                    await self.jobs.cancel(me, j.id)  # type: ignore[union-attr]
                    stopped.append(f"job:{j.id}")
        return stopped

    def clean(self, ctx: Caller, sandbox: dict[str, Any], why: str) -> None:
        """Inside an op: unregister the project and suspend the tenant (the folder goes after the commit)."""
        tenant = sandbox["tenant"]
        me = replace(ctx, tenant=tenant, project=None)
        projects = self.r.state.projects.get(tenant, {})
        if sandbox["project"] in projects:
            projects.pop(sandbox["project"])
            self.r.write(Delete("projects", {"tenant_id": tenant, "name": sandbox["project"]}))
            self.r.audit(tenant, me, "project.remove", f"project:{sandbox['project']}",
                         details={"path": sandbox["path"], "sandbox": why})
        t = self.r.state.tenants.get(tenant)
        if t is not None and t.status != "suspended":
            now = self.r.now()
            t.status, t.status_changed_at, t.status_reason = "suspended", now, CLEANED
            self.r.write(Update("tenants", {"status": "suspended", "status_changed_at": now,
                                            "status_reason": CLEANED}, {"tenant_id": tenant}))
            self.r.audit(tenant, me, "tenant.suspend", f"tenant:{tenant}", details={"reason": CLEANED})

    async def remove_folder(self, sandbox: dict[str, Any]) -> None:
        """Delete the sandbox folder (only ever below ``$MUSUBI_HOME/sandboxes``)."""
        import asyncio

        d = Path(sandbox["path"]).parent
        root = os.path.realpath(self.root)
        if not os.path.realpath(d).startswith(root + os.sep):
            log.error("not removing %s: outside %s", d, root)
            return
        await asyncio.to_thread(shutil.rmtree, d, True)
