"""The engine: one op runner and the feature services composed over it.

Each service is a plain class holding the runner (``runner.py``): its operations
are synchronous methods that check access (``access.py``), change state and
queue writes, run by :meth:`OpRunner.run <core.engine.runner.OpRunner.run>`.
Route rows name an operation as ``"<service>.<method>"`` (``routing.py`` resolves
it once, when the app is built).  A new feature adds its service class to
:attr:`Engine.SERVICES` and a line to ``__init__``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from core.engine.auditops import AuditService
from core.engine.runner import OpRunner
from core.engine.tenancy import TenancyService
from core.engine.tutorials import TutorialService
from core.engine.usage import UsageService
from core.finetune.service import ProviderTuning
from core.identity.service import IdentityService
from core.identity.sessions import SessionService
from core.integrations.entralogin import EntraLogins
from core.integrations.inbound import InboundService
from core.integrations.notify import Notifications
from core.integrations.persist import EngineNoticeStore, WebhookState
from core.integrations.runpipe import RunPipelines
from core.integrations.service import IntegrationService
from core.jobs.service import JobService
from core.orchestration.metrics import LatencyRecorder
from core.orchestration.providers import ProviderHub
from core.orchestration.service import RunService
from core.paths import HomePaths
from core.rag.service import IndexService
from core.storage.base import Storage
from core.tune.service import TuneEmbedService


class Engine:
    """The runner plus tenancy, quotas and usage, and audit, over one storage."""

    # The services a route's ``op`` may name, by attribute (tests resolve ops on the classes).
    SERVICES: dict[str, type] = {"tenancy": TenancyService, "usage": UsageService, "audit_ops": AuditService,
                                 "identity": IdentityService}
    SERVICES["sessions"] = SessionService  # remote sessions (docs/remote.md)
    SERVICES["inbound"] = InboundService  # Slack interactions and GitLab webhooks (docs/integrations.md)
    SERVICES["tutorials"] = TutorialService  # tutorials (issue 18): progress, checks, sandboxes (docs/tutorials.md)

    def __init__(self, paths: HomePaths, storage: Storage) -> None:
        self.runner = OpRunner(paths, storage)
        self.usage = UsageService(self.runner)
        self.tenancy = TenancyService(self.runner, self.usage)
        self.audit_ops = AuditService(self.runner)
        self.jobs = JobService(self.runner, self.runner.snapshot_jobs)  # background jobs; started by the daemon
        self.code_index = IndexService(self.runner, self.jobs)  # the code index and search (core/rag/service.py)
        # -- providers (issue 12): the LLM providers, rebuilt by `musubi engine reload` and SIGHUP
        self.providers = ProviderHub(_config_file)
        self.latency = LatencyRecorder()  # p50/p95/p99 per tenant, provider and model, fed by the run service
        self.identity = IdentityService(self.runner)  # SSO sessions, mapping rules, policy (core/identity)
        # orchestration runs (core/orchestration/service.py): calls through the providers, timed into latency
        self.runs = RunService(self.runner, self.jobs, self.usage, self.providers, self.latency)
        self.sessions = SessionService(self.runner)  # remote-session tokens (core/identity/sessions.py)
        # -- integrations (issue 17): connector settings, connection tests, the sync job kind, pipeline status
        self.integrations = IntegrationService(self.runner, self.jobs)
        # -- notify (issue 17): run/approval/quota/coverage notifications; inbound Slack and GitLab calls
        saved = self.runner.snapshot_integrations  # durable queue and webhook state (migration 010)
        self.notifications = Notifications(self.integrations,
                                           EngineNoticeStore(self.runner, saved.get("notify_queue", [])))
        self.runner.bus.taps.append(self.notifications.tap)
        self.integrations.webhooks = WebhookState(self.runner, saved.get("webhook_deliveries", []),
                                                  saved.get("webhook_pipelines", []))
        self.inbound = InboundService(self.runner, self.integrations, self.runs)
        self.tutorials = TutorialService(self.runner, self.tenancy)  # tutorials (issue 18)
        self.runs.sandbox_provider = self.tutorials.replay_for  # a sandbox's runs: the labelled replay provider
        self.tutorials.sandboxes.runs, self.tutorials.sandboxes.jobs = self.runs, self.jobs  # cleaning cancels these
        self.tutorials.latest_run = self._latest_run  # the {run} placeholder of tutorial steps
        # -- provider fine-tuning (issue 19): datasets from approved artefacts, jobs at OpenAI / Azure OpenAI
        self.tune_provider = ProviderTuning(self.runner, self.jobs, self.usage, self.providers, self.runs)
        # -- run pipelines (issue 17 gaps): the git ref each run built on and its CI pipeline (Dashboard)
        self.run_pipelines = RunPipelines(self.runner, self.integrations, self.runs, saved.get("run_refs", []))
        self.runner.bus.taps.append(self.run_pipelines.tap)
        self.entra_logins = EntraLogins(self.runner, self.integrations)  # Teams/ADO delegated tokens (device flow)
        # -- local embedder (issue 19): tuned embedders per project, their jobs, which one serves search
        self.tune_embed = TuneEmbedService(self.runner, self.jobs, self.code_index)

    def _latest_run(self, tenant: str) -> str | None:
        """The id of ``tenant``'s newest run (tutorials: the ``{run}`` placeholder), None when it has none."""
        runs = [d.run for d in self.runs.data.values() if d.run.tenant == tenant]
        return max(runs, key=lambda r: r.created_at).id if runs else None

    def operation(self, name: str) -> Callable[..., Any]:
        """The bound operation ``"<service>.<method>"`` (a ValueError naming what is wrong otherwise)."""
        service, _, method = name.partition(".")
        if service not in self.SERVICES or not method:
            raise ValueError(f"operation {name!r}: give <service>.<method>, service one of {', '.join(self.SERVICES)}")
        op = getattr(getattr(self, service), method, None)
        if not callable(op) or method.startswith("_"):
            raise ValueError(f"operation {name!r}: {self.SERVICES[service].__name__} has no operation {method!r}")
        return op


def _config_file() -> Path:
    """config.toml, looked up at each (re)load: MUSUBI_CONFIG_DIR as the engine sees it."""
    from core.paths import config_dir

    return config_dir() / "config.toml"
