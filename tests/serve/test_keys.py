"""The keys file, the host key and the limits of ``musubi serve ssh`` (no server needed)."""

from __future__ import annotations

import os
from pathlib import Path

import asyncssh
import pytest

from tui.serve.guard import FailureLimiter, SessionCaps
from tui.serve.hostkey import HOST_KEY, HostKeyError, host_key
from tui.serve.keys import KeyRing, KeysFileError, load, parse

KEY = asyncssh.generate_private_key("ssh-ed25519")
PUB = KEY.export_public_key().decode().strip()


def test_a_line_names_user_and_tenant_for_one_key() -> None:
    entries = parse(f"# team keys\n\nmusubi:user=mia,tenant=acme {PUB} mia@laptop\n")
    (e,) = entries.values()
    assert (e.user, e.tenant, e.comment, e.line) == ("mia", "acme", "mia@laptop", 3)
    assert e.fingerprint == KEY.get_fingerprint("sha256")


@pytest.mark.parametrize(("line", "says"), [
    (f'environment="MUSUBI_USER=root" {PUB}', "OpenSSH authorized_keys options are not read"),
    (f"{PUB}", "each line starts with musubi:"),
    (f"musubi:user=mia {PUB}", "tenant missing"),
    (f"musubi:user=mia,tenant=acme,command=/bin/sh {PUB}", "unknown option 'command=/bin/sh'"),
    (f"musubi:user=mia,tenant=acme,user=root {PUB}", "user is given twice"),
    (f"musubi:user=mia,tenant=ACME! {PUB}", "tenant"),
    ("musubi:user=mia,tenant=acme", "no public key"),
    ("musubi:user=mia,tenant=acme ssh-ed25519 AAAAnotakey", "not a public key"),
], ids=lambda v: v.replace(PUB, "<PUB>"))  # the key is new each run: ids must match across xdist workers
def test_lines_that_do_not_parse_are_refused_with_their_line_number(line: str, says: str) -> None:
    with pytest.raises(KeysFileError) as e:
        parse(f"# x\n{line}\n", "keys")
    assert "keys, line 2" in e.value.message and says in e.value.message, e.value.message


def test_the_same_key_twice_is_refused() -> None:
    with pytest.raises(KeysFileError, match="same key as line 1"):
        parse(f"musubi:user=mia,tenant=acme {PUB}\nmusubi:user=root,tenant=default {PUB}\n")


def test_a_keys_file_others_may_write_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "keys"
    p.write_text(f"musubi:user=mia,tenant=acme {PUB}\n")
    os.chmod(p, 0o620)
    with pytest.raises(KeysFileError, match="chmod go-w"):
        load(p)
    os.chmod(p, 0o600)
    assert len(load(p)) == 1


def test_a_changed_keys_file_is_reread_and_a_broken_one_refuses_every_key(tmp_path: Path) -> None:
    p = tmp_path / "keys"
    p.write_text(f"musubi:user=mia,tenant=acme {PUB}\n")
    os.chmod(p, 0o600)
    ring = KeyRing(p)
    assert ring.lookup(KEY) is not None
    p.write_text(f"musubi:user=mia,tenant=acme {PUB}\nbroken line\n")  # a bad edit: never keep the old keys
    os.utime(p, ns=(1, 1))
    assert ring.lookup(KEY) is None
    p.write_text("# mia removed\n")
    os.utime(p, ns=(2, 2))
    assert ring.lookup(KEY) is None


def test_the_host_key_is_made_once_0600_and_kept(tmp_path: Path) -> None:
    key, made = host_key(tmp_path)
    assert made and (os.stat(tmp_path / HOST_KEY).st_mode & 0o777) == 0o600
    again, made_again = host_key(tmp_path)
    assert not made_again and again.public_data == key.public_data
    os.chmod(tmp_path / HOST_KEY, 0o644)
    with pytest.raises(HostKeyError, match="chmod 600"):
        host_key(tmp_path)


def test_failures_per_address_are_limited_within_the_window() -> None:
    now = [1000.0]
    lim = FailureLimiter(2, 60, clock=lambda: now[0])
    lim.failed("10.0.0.1")
    assert not lim.blocked("10.0.0.1")
    lim.failed("10.0.0.1")
    assert lim.blocked("10.0.0.1") and not lim.blocked("10.0.0.2")
    assert lim.retry_after("10.0.0.1") == 61
    now[0] += 60.5
    assert not lim.blocked("10.0.0.1")


def test_session_caps_count_per_user_and_in_total() -> None:
    caps = SessionCaps(total=2, per_user=1)
    assert caps.refuse("mia") is None
    assert "mia already has 1" in (caps.refuse("mia") or "")
    assert caps.refuse("bo") is None
    assert "already has its 2" in (caps.refuse("cy") or "")
    caps.closed("mia")
    assert caps.refuse("cy") is None


def test_a_refusal_is_worth_auditing_once_per_window() -> None:
    now = [0.0]
    lim = FailureLimiter(2, 60, clock=lambda: now[0])
    assert lim.first_in_window("blocked 10.0.0.1") and not lim.first_in_window("blocked 10.0.0.1")
    assert lim.first_in_window("blocked 10.0.0.2")
    now[0] += 61
    assert lim.first_in_window("blocked 10.0.0.1")


def test_term_and_colorterm_from_the_client_are_sanitised() -> None:
    from tui.serve.spawn import colorterm_of, term_of

    assert term_of("xterm-kitty") == "xterm-kitty"
    for bad in (None, "", "../../etc/passwd", "xterm\x1b]0;pwn\x07", "x" * 100):
        assert term_of(bad) == "xterm-256color"
    assert colorterm_of("xterm-256color", "truecolor") == "truecolor"
    assert colorterm_of("xterm-direct", None) == "truecolor"
    assert colorterm_of("xterm-256color", "; rm -rf /") is None
