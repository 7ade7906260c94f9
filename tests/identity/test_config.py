"""The [sso] section of config.toml: validated whole, every mistake naming the file, the key and the fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from core.config import ConfigError, load_config


def load(tmp_path: Path, text: str) -> object:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return load_config(path, check_models=False)


GOOD = """
[sso]
default = "corp"

[sso.providers.corp]
issuer = "https://idp.example.com/realms/eng"
client_id = "musubi-cli"

[sso.providers.entra]
kind = "entra"
authority = "https://login.microsoftonline.com/00000000-0000-0000-0000-000000000000"
client_id = "11111111-1111-1111-1111-111111111111"
scopes = ["User.Read"]
"""


def test_a_good_section(tmp_path: Path) -> None:
    cfg = load(tmp_path, GOOD)
    sso = cfg.sso  # type: ignore[attr-defined]
    assert sso.default == "corp" and set(sso.providers) == {"corp", "entra"}
    assert sso.providers["entra"].scopes == ["openid", "User.Read"]  # openid always asked for
    assert sso.providers["corp"].discovery_url() == "https://idp.example.com/realms/eng/.well-known/openid-configuration"
    assert sso.providers["entra"].discovery_url().endswith("/00000000-0000-0000-0000-000000000000/v2.0/"
                                                           ".well-known/openid-configuration")


@pytest.mark.parametrize(("change", "says"), [
    (('issuer = "https://idp.example.com/realms/eng"', 'issuer = "http://idp.example.com"'), "https://"),
    (('client_id = "musubi-cli"', 'client_id = ""'), "client_id is required"),
    (('client_id = "musubi-cli"', 'client_id = "musubi-cli"\nclient_secret = "s3cret"'), "unknown setting"),
    (('default = "corp"', 'default = "nope"'), "default names no provider"),
    (('scopes = ["User.Read"]', 'scopes = ["User.Read"]\nalgorithms = ["HS256"]'), "HMAC"),
    (("00000000-0000-0000-0000-000000000000", "common"), "not common"),
    (('default = "corp"', 'default = "corp"\nsession_minutes = 1'), "session_minutes must be 5 to 10080"),
])
def test_mistakes_name_the_file_key_and_fix(tmp_path: Path, change: tuple[str, str], says: str) -> None:
    with pytest.raises(ConfigError) as info:
        load(tmp_path, GOOD.replace(*change))
    msg = info.value.message
    assert says in msg and str(tmp_path / "config.toml") in msg and "sso" in msg
    assert info.value.exit_code == 2
    assert "s3cret" not in msg  # a value given for an unknown key is never echoed
