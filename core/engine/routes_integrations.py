"""Integrations routes (issue 17): connector settings, connection test, sync jobs, pipeline status.

The work is in :class:`core.integrations.service.IntegrationService` (``engine.integrations``);
each operation checks its permission itself (denials audited) and runs its own ``engine.run``,
so these handlers only build the caller's context.  docs/integrations.md is the user's page.
"""

from __future__ import annotations

from aiohttp import web

from core.api import inbound as ib
from core.api import integrations as i
from core.api.models import Empty
from core.engine.http import Api, json_response
from core.engine.routing import Route


class IntegrationRoutes:
    def __init__(self, api: Api) -> None:
        self.api = api

    async def listing(self, request: web.Request, req: Empty) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.integrations.listing(c))

    async def configure(self, request: web.Request, req: i.IntegrationSet) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.integrations.configure(c, req.system, req.settings, req.secrets,
                                                                     req.unset))

    async def test(self, request: web.Request, req: i.SystemPath) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.integrations.test(c, req.system))

    async def sync(self, request: web.Request, req: i.SyncStart) -> web.Response:
        c = await self.api.ctx(request)
        answer = await self.api.e.integrations.sync_start(c, req.system, req.project_key, req.dry_run,
                                                          req.resolve, req.include)
        return json_response(answer, 202)

    async def notify(self, request: web.Request, req: i.NotifySend) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.integrations.notify(c, req.system, req.title, req.text, req.target))

    async def pipelines(self, request: web.Request, req: i.PipelineQuery) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.integrations.pipelines(c, req.system, req.ref, req.project_key))

    # -- notify (issue 17): inbound calls forwarded by `musubi serve hooks`, the user mapping --

    async def slack_inbound(self, request: web.Request, req: ib.SlackInteraction) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.inbound.slack(c, req.body, req.timestamp, req.signature))

    async def teams_inbound(self, request: web.Request, req: ib.TeamsActivity) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.inbound.teams(c, req.body, req.authorization))

    async def gitlab_inbound(self, request: web.Request, req: ib.GitLabHook) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.inbound.gitlab(c, req.body, req.token, req.event,
                                                             req.idempotency_key))

    async def users(self, request: web.Request, req: Empty) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.inbound.users(c))

    async def map_user(self, request: web.Request, req: ib.UserMapSet) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.inbound.map_user(c, req.system, req.external, req.user))


    # -- run pipelines (issue 17 gaps): the CI pipeline of the ref a run built on --

    async def run_pipeline(self, request: web.Request, req: i.RunPipelinePath) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.run_pipelines.show(c, req.id))

    async def run_pipeline_link(self, request: web.Request, req: i.RunPipelineLink) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.run_pipelines.link(c, req.id, req.ref, req.system))

    # -- Entra sign-in (issue 17 gaps): msal device flow for Teams (Graph) and Azure DevOps --

    async def login(self, request: web.Request, req: i.SystemPath) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.entra_logins.start(c, req.system), 202)

    async def login_status(self, request: web.Request, req: i.SystemPath) -> web.Response:
        c = await self.api.ctx(request)
        return json_response(await self.api.e.entra_logins.status(c, req.system))


R = IntegrationRoutes
MANAGE = "integrations.manage"
ROUTES: tuple[Route, ...] = (
    Route("GET", "/v1/integrations", "integration.read", MANAGE, Empty, i.Integrations, handler=R.listing, feature=R),
    Route("PUT", "/v1/integrations/{system}", "integration.set", MANAGE, i.IntegrationSet, i.IntegrationSaved,
          handler=R.configure, feature=R),
    Route("POST", "/v1/integrations/{system}/test", "integration.test", MANAGE, i.SystemPath, i.IntegrationTested,
          body=False, handler=R.test, feature=R),
    Route("POST", "/v1/integrations/{system}/notify", "integration.notify", MANAGE, i.NotifySend, i.Notified,
          handler=R.notify, feature=R),
    Route("GET", "/v1/integrations/{system}/pipelines", "integration.read", "specs.read", i.PipelineQuery,
          i.PipelineStatus, handler=R.pipelines, feature=R),
    # -- notify (issue 17): inbound (the engine's OS user only) and the external-user mapping
    Route("POST", "/v1/inbound/slack", "integration.inbound", "engine", ib.SlackInteraction, ib.SlackAnswer,
          handler=R.slack_inbound, feature=R, outsiders=True),
    Route("POST", "/v1/inbound/gitlab", "integration.inbound", "engine", ib.GitLabHook, ib.GitLabAccepted,
          handler=R.gitlab_inbound, feature=R, outsiders=True),
    Route("POST", "/v1/inbound/teams", "integration.inbound", "engine", ib.TeamsActivity, ib.TeamsAnswer,
          handler=R.teams_inbound, feature=R, outsiders=True),  # teams bot (issue 17)
    Route("GET", "/v1/integrations/users", "integration.read", MANAGE, Empty, ib.UserMap, handler=R.users,
          feature=R),
    Route("PUT", "/v1/integrations/{system}/users/{external}", "integration.map_user", MANAGE, ib.UserMapSet,
          ib.UserMap, handler=R.map_user, feature=R),
    Route("POST", "/v1/sync/{system}", "job.start", "specs.write", i.SyncStart, i.SyncStarted, status=202,
          handler=R.sync, feature=R),
    # -- run pipelines (issue 17 gaps)
    Route("GET", "/v1/runs/{id}/pipeline", "run.pipeline", "member", i.RunPipelinePath, i.RunPipeline,
          handler=R.run_pipeline, feature=R),
    Route("PUT", "/v1/runs/{id}/pipeline", "run.pipeline.link", "member", i.RunPipelineLink, i.RunPipeline,
          handler=R.run_pipeline_link, feature=R),
    # -- Entra sign-in (issue 17 gaps)
    Route("POST", "/v1/integrations/{system}/login", "integration.login", MANAGE, i.SystemPath, i.EntraLogin,
          status=202, body=False, handler=R.login, feature=R),
    Route("GET", "/v1/integrations/{system}/login", "integration.login", MANAGE, i.SystemPath, i.EntraLogin,
          handler=R.login_status, feature=R),
)
