"""Identity beyond the OS user: SSO sign-in (OIDC), ID token validation, group -> role mapping.

- ``settings.py``: the ``[sso]`` section of config.toml (providers, client ids; no secrets).
- ``keys.py``: discovery and JWKS of a provider, fetched over TLS, cached, refetched once per unknown ``kid``.
- ``tokens.py``: ID token validation (PyJWT): signature by ``kid``, ``iss``, ``aud``, ``exp``/``nbf``, ``nonce``.
- ``mapping.py``: admin rules (claim value -> tenant role), evaluated at each sign-in.
- ``service.py``: the engine's identity service (sessions bound to the peer's OS user, rules, policy).
- ``gate.py``: the tenant policy "SSO required".
- ``flows.py`` / ``store.py``: the client side (device flow, msal, PKCE; the user's 0600 files).
- ``redact.py``: tokens never reach a message or a log line.
- ``sessions.py``: engine-minted session tokens for remote sessions (``musubi serve``, docs/remote.md).

See docs/identity.md and docs/remote.md.
"""
