"""An Entra ID bearer token for Azure OpenAI, through msal's client-credentials flow.

Configured with ``[providers.NAME] kind = "azure-openai", auth = "entra", tenant_id,
client_id`` and the client secret in ``api_key`` (so it is kept out of every repr and
answer like a key; with ``auth = "entra"`` it is never sent to Azure OpenAI itself).
The scope is ``https://cognitiveservices.azure.com/.default``; the identity needs the
"Cognitive Services OpenAI User" role.  msal caches the token and renews it before it
expires; its calls are blocking, so they run in a thread.
"""

from __future__ import annotations

import asyncio
from typing import Any

from core.orchestration.contracts import ProviderError, ProviderSettings

SCOPE = "https://cognitiveservices.azure.com/.default"
AUTHORITY_HOST = "https://login.microsoftonline.com"


class EntraTokenProvider:
    """``await provider()`` -> an access token (cached and renewed by msal)."""

    def __init__(self, name: str, tenant_id: str, client_id: str, client_secret: str, *,
                 authority_host: str = AUTHORITY_HOST, app: Any = None) -> None:
        self.name = name
        self.secret = client_secret
        self._authority = f"{authority_host.rstrip('/')}/{tenant_id}"
        self._client_id = client_id
        self._app = app

    def __repr__(self) -> str:
        return f"EntraTokenProvider(name={self.name!r}, authority={self._authority!r})"

    @classmethod
    def from_settings(cls, settings: ProviderSettings) -> EntraTokenProvider:
        extra = settings.extra
        missing = [k for k in ("tenant_id", "client_id") if not extra.get(k)]
        if not settings.api_key:
            missing.append("api_key (the client secret)")
        if missing:
            raise ValueError(f"provider {settings.name}: auth = \"entra\" needs {', '.join(missing)}")
        return cls(settings.name, str(extra["tenant_id"]), str(extra["client_id"]), str(settings.api_key),
                   authority_host=str(extra.get("authority_host") or AUTHORITY_HOST))

    def _application(self) -> Any:
        if self._app is None:
            import msal

            self._app = msal.ConfidentialClientApplication(
                self._client_id, authority=self._authority, client_credential=self.secret,
            )
        return self._app

    async def __call__(self) -> str:
        try:
            result = await asyncio.to_thread(self._application().acquire_token_for_client, scopes=[SCOPE])
        except ValueError as exc:  # msal: authority discovery failed
            raise ProviderError("auth", f"{self.name}: Entra ID sign-in failed: {exc}", provider=self.name) from None
        token = result.get("access_token") if isinstance(result, dict) else None
        if not token:
            said = (result or {}).get("error_description") or (result or {}).get("error") or "no token"
            text = str(said).replace(self.secret, "[redacted]")
            raise ProviderError("auth", f"{self.name}: Entra ID refused the token: {text}", provider=self.name)
        return str(token)
