"""Per-tenant connector settings and secrets, kept outside DuckDB.

Layout under the tenant's folder (``$MUSUBI_HOME/tenants/<tenant>/integrations/``, 0700)::

    settings.json   {"jira": {"url": ..., "email": ..., "auth": "basic"}, ...}   0600
    secrets.json    {"jira": {"token": "..."}, ...}                              0600
    users.json      {"slack": {"U0123ABCD": "alice"}}  (who a Slack click is)    0600

Why a 0600 file and not the OS keyring: the engine runs detached (new session, no terminal,
often over SSH), where keyring backends need a desktop session bus that is not there, and the
``keyring`` package is not a dependency; a file readable only by the engine's OS user, next to
the audit signing key (also 0600), is the same trust boundary as the database itself.  Secrets
never enter DuckDB, the journal, the audit log or an API answer: answers show only which
secrets are set.  Each write is atomic (temp file, fsync, rename) and durable before success.
"""

from __future__ import annotations

import json
import os
import re
import threading
from pathlib import Path
from typing import Any

from core.errors import BadRequest
from core.integrations.contracts import SYSTEMS

_KEY = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
MAX_VALUE = 4096
SECRET_NAMES = {"jira": ("token",), "github": ("token",), "gitlab": ("token", "webhook_token", "trigger_token"),
                "ado": ("token", "msal_cache"), "slack": ("token", "webhook_url", "signing_secret"),
                "teams": ("webhook_url", "graph_token", "msal_cache", "bot_app_secret")}
# msal_cache: the Entra sign-in's (entra.py); bot_app_secret: the Teams bot's (botauth.py)


# A plug-in connector (docs/plugins.md) keeps one secret, ``token``.
PLUGIN_SECRETS = ("token",)


def check_system(system: str) -> str:
    """``system`` when it is a built-in one or an installed plug-in connector's name; else a 400 naming them."""
    from core.integrations import registry

    if system not in SYSTEMS and system not in registry.available():
        known = [*SYSTEMS, *sorted(set(registry.available()) - set(SYSTEMS))]
        raise BadRequest(f"unknown system {system!r}; one of {', '.join(known)}.", field="system")
    return system


def check_pairs(pairs: dict[str, Any], what: str) -> dict[str, str]:
    out = {}
    for k, v in pairs.items():
        if not isinstance(k, str) or not _KEY.match(k):
            raise BadRequest(f"{what} name {k!r} must be lower-case letters, digits and _ (e.g. requirement_type).",
                             field=what)
        if not isinstance(v, str) or len(v) > MAX_VALUE:
            raise BadRequest(f"{what} {k} must be text of at most {MAX_VALUE} characters.", field=what)
        out[k] = v
    return out


class IntegrationStore:
    """The two files of one home, per tenant; one writer at a time."""

    def __init__(self, tenant_dir: Any) -> None:
        self._tenant_dir = tenant_dir  # Callable[[str], Path]
        self._lock = threading.Lock()

    def _dir(self, tenant: str) -> Path:
        d = Path(self._tenant_dir(tenant)) / "integrations"
        d.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(d, 0o700)
        return d

    def _read(self, path: Path) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise BadRequest(f"{path} cannot be read ({exc}); fix or delete it, then set the integration again."
                             ) from None
        return data if isinstance(data, dict) else {}

    @staticmethod
    def _write(path: Path, data: dict[str, Any]) -> None:
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)

    def settings(self, tenant: str) -> dict[str, dict[str, str]]:
        return self._read(self._dir(tenant) / "settings.json")

    def secrets(self, tenant: str, system: str) -> dict[str, str]:
        return dict(self._read(self._dir(tenant) / "secrets.json").get(system) or {})

    def secret_names(self, tenant: str) -> dict[str, list[str]]:
        return {s: sorted(v) for s, v in self._read(self._dir(tenant) / "secrets.json").items() if v}

    def update(self, tenant: str, system: str, settings: dict[str, str], secrets: dict[str, str],
               unset: list[str]) -> dict[str, Any]:
        """Merge ``settings`` and ``secrets`` (empty value: remove), drop ``unset`` names; durable on return."""
        check_system(system)
        allowed = SECRET_NAMES.get(system, PLUGIN_SECRETS)
        bad = [k for k in secrets if k not in allowed]
        if bad:
            raise BadRequest(f"{system} has no secret {', '.join(bad)}; its secrets: {', '.join(allowed)}.",
                             field="secrets")
        leaked = [k for k in settings if k in allowed]
        if leaked:
            raise BadRequest(f"{', '.join(leaked)} is a secret: pass it with --secret (read from stdin), "
                             "never as a plain setting.", field="settings")
        with self._lock:
            d = self._dir(tenant)
            all_settings = self._read(d / "settings.json")
            mine = {**all_settings.get(system, {}), **settings}
            all_secrets = self._read(d / "secrets.json")
            hidden = {**all_secrets.get(system, {}), **secrets}
            for name in unset:
                mine.pop(name, None)
                hidden.pop(name, None)
            mine = {k: v for k, v in mine.items() if v != ""}
            hidden = {k: v for k, v in hidden.items() if v != ""}
            all_settings[system] = mine
            all_secrets[system] = hidden
            if secrets or unset:
                self._write(d / "secrets.json", all_secrets)
            self._write(d / "settings.json", all_settings)
        return {"system": system, "settings": mine, "secrets": sorted(hidden)}

    # -- notify (issue 17): external user -> musubi user (users.json, 0600, beside the settings) -------

    def user_map(self, tenant: str) -> dict[str, dict[str, str]]:
        """``{system: {external id: musubi user}}`` of ``tenant``."""
        return self._read(self._dir(tenant) / "users.json")

    def set_user(self, tenant: str, system: str, external: str, user: str | None) -> None:
        """Map (``user``) or unmap (None) one external id; durable on return."""
        with self._lock:
            path = self._dir(tenant) / "users.json"
            data = self._read(path)
            mine = dict(data.get(system) or {})
            if user is None:
                mine.pop(external, None)
            else:
                mine[external] = user
            data[system] = mine
            self._write(path, data)
