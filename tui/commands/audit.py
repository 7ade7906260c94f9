"""``musubi audit list|verify|export|prune|checkpoint``: the tamper-evident audit log."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from core.api import calls
from core.errors import EXIT_VERIFY
from core.exports import export_audit, export_checkpoint
from tui.output import (
    CliState,
    abspath,
    confirm,
    emit,
    example,
    fields,
    group,
    line,
    pass_state,
    table,
    when,
)

if TYPE_CHECKING:
    from core.api.models import AuditEvent
    from core.api.responses import Verified

cli_group = group(
    "audit",
    "Read, verify, export and prune the audit log. Each tenant's log is a SHA-256 hash chain; "
    "signed checkpoints keep it verifiable after pruning.",
    "musubi audit list --outcome denied --since 2026-01-01",
    "musubi audit verify",
    "musubi audit export --format parquet -o audit.parquet",
    "musubi audit checkpoint --export cp.json && musubi audit checkpoint --verify cp.json",
)

OUTCOMES = ("success", "denied", "error")


def _filters(f: Any) -> Any:
    """The event filters shared by list and export."""
    f = click.option("--outcome", type=click.Choice(OUTCOMES), help="Only events with this outcome.")(f)
    f = click.option("--action", metavar="ACTION", help="Only this action, e.g. quota.set.")(f)
    f = click.option("--actor", metavar="USER", help="Only events by this user.")(f)
    f = click.option("--until", metavar="DATE", help="Events before this UTC date or datetime.")(f)
    return click.option("--since", metavar="DATE", help="Events at or after this UTC date or datetime (YYYY-MM-DD[THH:MM:SS]).")(f)


def _detail_text(d: dict[str, Any]) -> str:
    text = json.dumps(d, ensure_ascii=False, sort_keys=True, separators=(", ", "=")) if d else ""
    text = text.strip("{}").replace('"', "")
    return text if len(text) <= 80 else text[:77] + "..."


@cli_group.command("list", epilog=example(
    "musubi audit list", "musubi audit list --outcome denied --limit 20",
    "musubi audit list --action quota.set --since 2026-03-01 --json"))
@_filters
@click.option("--limit", type=click.IntRange(1, 10_000), metavar="N", default=None, help="At most this many events (default 100).")
@click.option("--oldest-first", is_flag=True, help="Oldest first (default: newest first).")
@click.option("--system", is_flag=True,
              help="The system log instead: requests naming no existing tenant (system owners only).")
@pass_state
def list_(state: CliState, since: str | None, until: str | None, actor: str | None, action: str | None,
          outcome: str | None, limit: int | None, oldest_first: bool, system: bool) -> None:
    """List audit events of the tenant (needs 'audit.read'), or with --system the system log."""
    data = state.client().call(calls.audit_list(
        since=since, until=until, actor=actor, action=action, outcome=outcome, limit=limit,
        ascending="1" if oldest_first else None, system="true" if system else None,
    ))

    def human(rows: list[AuditEvent]) -> None:
        table(("SEQ", "TIME (UTC)", "ACTOR", "ACTION", "RESOURCE", "OUTCOME", "DETAILS"),
              ((e["seq"], when(e["ts"]), e["actor"], e["action"], e["resource"], e["outcome"], _detail_text(e["details"]))
               for e in rows),
              empty="no audit events match.", justify_right=("SEQ",), wrap=("RESOURCE", "DETAILS"))

    emit(state, data, human)


@cli_group.command(epilog=example(
    "musubi audit verify", "musubi audit verify --json || echo 'chain broken'",
    "musubi audit verify --against checkpoint-2026-11.json"))
@click.option("--against", "against", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also check the chain still holds the head of this exported checkpoint "
                   "(catches events cut off the end, which a chain alone cannot show).")
@click.option("--system", is_flag=True, help="Verify the system log instead (system owners only).")
@pass_state
@click.pass_context
def verify(ctx: click.Context, state: CliState, against: str | None, system: bool) -> None:
    """Re-hash the tenant's chain from its last checkpoint. Exit 5 when it is broken."""
    anchor = None
    if against:
        try:
            anchor = json.loads(Path(against).read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise click.BadParameter(f"cannot read checkpoint {against}: {exc}", param_hint="--against") from None
    data = state.client().call(calls.audit_verify(anchor, system or None))

    def human(d: Verified) -> None:
        cps = f", {d['checkpoints']} checkpoint(s)" if d.get("checkpoints") else ""
        if d.get("ok"):
            line(f"audit chain of tenant {d['tenant_id']} verifies: {d['checked']} events checked "
                 f"(seq {d['start_seq']}..{d['last_seq']}){cps}.")
        else:
            line(f"audit chain of tenant {d['tenant_id']} is BROKEN at seq {d['first_bad_seq']}: {d['reason']} "
                 f"({d['checked']} events checked before it{cps}).")
        for g in d.get("quarantined") or ():
            line(f"note: events {g['first_seq']}..{g['last_seq']} are not in the database: the engine set their write "
                 f"aside (journal group {g['group']}, $MUSUBI_HOME/{g['file']}: {g['error']}); they were checked from that file.")

    emit(state, data, human)
    if not data.get("ok"):
        ctx.exit(EXIT_VERIFY)


@cli_group.command(epilog=example(
    "musubi audit export --format jsonl -o audit.jsonl",
    "musubi audit export --format csv -o denied.csv --outcome denied --since 2026-01-01",
    "musubi audit export --format parquet -o audit.parquet --force   # replace an earlier export"))
@click.option("--format", "fmt", required=True, type=click.Choice(("jsonl", "csv", "parquet")), help="File format.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), metavar="FILE",
              help="Output file, written by this command (never inside MUSUBI_HOME but for its exports/ folder, "
                   "never through a symbolic link).")
@click.option("--force", is_flag=True, help="Replace FILE if it exists (it is replaced whole, never written into).")
@_filters
@pass_state
def export(state: CliState, fmt: str, output: str, force: bool, since: str | None, until: str | None,
           actor: str | None, action: str | None, outcome: str | None) -> None:
    """Write matching audit events, with their hashes, to FILE (needs 'audit.export')."""
    filters = {k: v for k, v in {"since": since, "until": until, "actor": actor, "action": action,
                                 "outcome": outcome}.items() if v}
    data = export_audit(state.client(), fmt, filters, output, force=force)
    emit(state, data, lambda d: line(f"exported {d['events']} events to {d['path']} ({d['format']})."))


@cli_group.command(epilog=example("musubi audit prune --before 2026-01-01", "musubi audit prune --before 2026-01-01 --yes --json"))
@click.option("--before", required=True, metavar="DATE", help="Remove events before this UTC date or datetime.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask (required without a terminal or with --json).")
@pass_state
def prune(state: CliState, before: str, yes: bool) -> None:
    """Remove old events, keeping a signed checkpoint so the chain still verifies."""
    confirm(state, f"remove the audit events of tenant {state.current_tenant()!r} before {before}", yes,
            "A signed checkpoint keeps the rest verifiable.")
    data = state.client().call(calls.audit_prune(before))
    emit(state, data, lambda d: line(
        f"pruned {d['events_removed']} events (through seq {d['pruned_through_seq']}) of tenant {d['tenant']}; "
        f"checkpoint hash {d['checkpoint_hash'][:16]}…"))


def verify_checkpoint_file(path: str, public_key: str | None) -> dict[str, Any]:
    """Check an exported checkpoint offline: its signature, and the key if one is pinned."""
    from core.audit import verify_checkpoint_doc

    # Every key is present whatever the outcome, so --json has one shape.
    out: dict[str, Any] = {"valid": False, "reason": None, "path": abspath(path), "key_pinned": public_key is not None,
                           "tenant_id": None, "seq": None, "hash": None, "created_at": None, "public_key": None}
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        out["reason"] = f"not a readable JSON checkpoint: {exc}"
        return out
    if not isinstance(doc, dict):
        out["reason"] = "not a checkpoint: the JSON is not an object"
        return out
    for k in ("tenant_id", "seq", "hash", "created_at", "public_key"):
        out[k] = doc.get(k)
    if not verify_checkpoint_doc(doc):
        out["reason"] = "the signature does not match the contents (or fields are missing)"
        return out
    if public_key is not None:
        try:
            pinned = base64.b64decode(public_key, validate=True)
            have = base64.b64decode(str(doc["public_key"]), validate=True)
        except (binascii.Error, ValueError):
            raise click.BadParameter("not base64 (copy it from a trusted checkpoint's public_key)",
                                     param_hint="--public-key") from None
        if pinned != have:
            out["reason"] = "signed by a different key than the pinned --public-key"
            return out
    out["valid"] = True
    return out


@cli_group.command(epilog=example(
    "musubi audit checkpoint --export cp.json",
    "musubi audit checkpoint --verify cp.json          # offline, no engine needed",
    "musubi audit checkpoint --verify cp.json --public-key w7MjT4gf5GTHNyJGADLTj0QRDwC9ZbwnCJ5fqDUg9aY="))
@click.option("--export", "export_path", type=click.Path(dir_okay=False), metavar="FILE",
              help="Write the signed checkpoint to FILE (same rules as audit export -o).")
@click.option("--force", is_flag=True, help="With --export: replace FILE if it exists.")
@click.option("--verify", "verify_path", type=click.Path(exists=True, dir_okay=False), metavar="FILE",
              help="Verify a checkpoint file offline instead (exit 5 if invalid).")
@click.option("--public-key", metavar="B64", help="With --verify: the Ed25519 public key the file must be signed with.")
@pass_state
@click.pass_context
def checkpoint(ctx: click.Context, state: CliState, export_path: str | None, force: bool, verify_path: str | None,
               public_key: str | None) -> None:
    """Sign the chain's current head (seq and hash) with the engine's Ed25519 key, or verify one."""
    if verify_path and export_path:
        raise click.UsageError("give either --export FILE or --verify FILE, not both.")
    if public_key and not verify_path:
        raise click.UsageError("--public-key only applies with --verify FILE.")
    if force and not export_path:
        raise click.UsageError("--force only applies with --export FILE.")
    if verify_path:
        res = verify_checkpoint_file(verify_path, public_key)

        def human_v(d: dict[str, Any]) -> None:
            if d["valid"]:
                pin = " with the pinned key" if d["key_pinned"] else f" (key {d['public_key']})"
                line(f"checkpoint {d['path']} is valid{pin}: tenant {d['tenant_id']}, seq {d['seq']}, hash {d['hash']}.")
            else:
                line(f"checkpoint {d['path']} is INVALID: {d['reason']}.")

        emit(state, res, human_v)
        if not res["valid"]:
            ctx.exit(EXIT_VERIFY)
        return
    data: Mapping[str, Any]
    if export_path:
        data = export_checkpoint(state.client(), export_path, force=force)
    else:
        data = state.client().call(calls.audit_checkpoint())

    def human(d: Mapping[str, Any]) -> None:
        fields(d, ["tenant_id", "seq", "hash", "created_at", "algorithm", "public_key", "signature"])
        if export_path:
            line(f"written to {abspath(export_path)}; verify it anywhere with: musubi audit checkpoint --verify FILE")
        else:
            line("save it with --export FILE to verify it offline later.")

    emit(state, data, human)
