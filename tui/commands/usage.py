"""``musubi usage record|reserve|settle|release|reservations|history``."""

from __future__ import annotations

from decimal import Decimal
from typing import TYPE_CHECKING, Any

import click

from core.api import calls
from core.models.kinds import TASK_KINDS
from tui.output import CliState, emit, example, group, line, pass_state, table, warn, when

if TYPE_CHECKING:
    from core.api.models import Reserved, UsageRecorded
    from core.api.responses import ReservationRow, Settled, UsageHistory

cli_group = group(
    "usage",
    "Record, reserve and settle usage. 'record' charges usage made elsewhere; 'reserve' holds an "
    "estimate before an LLM call, then 'settle' (actual use) or 'release' (unused).",
    "musubi usage record --model gpt-4o --input-tokens 1200 --output-tokens 300 --cost-usd 0.0105",
    "musubi usage reserve --tokens 4000",
    "musubi usage history --bucket day --since-hours 168",
)

_count = click.IntRange(min=0)


def _charge_opts(f: Any) -> Any:
    f = click.option("--task", "task_kind", type=click.Choice(TASK_KINDS),
                     help="What kind of work it was; cost estimates learn expected output per task kind.")(f)
    f = click.option("--cost-usd", metavar="USD", help="Cost in dollars, exact to the micro-dollar (e.g. 0.0105).")(f)
    f = click.option("--requests", type=_count, metavar="N", default=1, show_default=True, help="Number of requests.")(f)
    f = click.option("--output-tokens", type=_count, metavar="N", required=True, help="Output (completion) tokens.")(f)
    return click.option("--input-tokens", type=_count, metavar="N", required=True, help="Input (prompt) tokens.")(f)


@cli_group.command(epilog=example(
    "musubi usage record --model sonnet --input-tokens 1200 --output-tokens 300",
    "musubi usage record --model gpt-4o --input-tokens 10 --output-tokens 5 --cost-usd 0.0001 --json",
))
@click.option("--model", required=True, metavar="M", help="Model name, as the provider calls it.")
@_charge_opts
@pass_state
def record(state: CliState, model: str, input_tokens: int, output_tokens: int, requests: int,
           cost_usd: str | None, task_kind: str | None) -> None:
    """Charge usage made outside the workstation (another agent CLI).

    Without --cost-usd the engine prices it from the model registry (every input token priced
    uncached). A model with no price there is refused (exit 2) while a cost_usd limit applies to
    you, else recorded at $0 with a warning (docs/quotas.md#pricing).
    Exit 3, with nothing charged, when it would exceed a hard limit.
    """
    data = state.client().call(
        calls.usage_record(model, input_tokens, output_tokens, requests, cost_usd, task_kind)
    )

    def human(d: UsageRecorded) -> None:
        line(f"recorded {d['tokens']} tokens, {d['requests']} request(s), ${d['cost_usd']} for {d['model']} "
             f"(entry {d['entry_id']}){_priced(cost_usd, d)}.")

    emit(state, data, human)


def _priced(cost_usd: str | None, d: UsageRecorded | Reserved | Settled) -> str:
    """How the cost was set, for the human line; an unpriced one's warning goes to stderr."""
    if cost_usd is not None:
        return ""
    if d["priced"]:
        return " at the model registry's prices"
    warn(d["warning"] or "not priced.")
    return ", not priced"


@cli_group.command(epilog=example("musubi usage reserve --tokens 4000 --model sonnet",
                                  "musubi usage reserve --tokens 8000 --cost-usd 0.05 --ttl 120 --json"))
@click.option("--tokens", type=_count, metavar="N", default=0, show_default=True, help="Tokens to hold.")
@click.option("--requests", type=_count, metavar="N", default=1, show_default=True, help="Requests to hold.")
@click.option("--cost-usd", metavar="USD", help="Dollars to hold.")
@click.option("--ttl", "ttl_s", type=click.IntRange(1, 86_400), metavar="S",
              help="Seconds until an unsettled reservation expires (default 600).")
@click.option("--model", metavar="M", help="Model the call will use; without --cost-usd it prices the hold.")
@pass_state
def reserve(state: CliState, tokens: int, requests: int, cost_usd: str | None, ttl_s: int | None,
            model: str | None) -> None:
    """Hold an estimate against the limits (exit 3 when it does not fit).

    Without --cost-usd, --model prices the hold from the model registry (every token at the dearer
    of the model's input and output prices); without either it holds $0, refused (exit 2) while a
    cost_usd limit applies to you (docs/quotas.md#pricing).
    """
    data = state.client().call(calls.usage_reserve(tokens, requests, cost_usd, ttl_s, model))

    def human(d: Reserved) -> None:
        line(f"{d['reservation_id']}: holding {d['tokens']} tokens, {d['requests']} request(s), "
             f"${d['cost_usd']}{_priced(cost_usd, d)} until {d['expires_at']}.")

    emit(state, data, human)


@cli_group.command(epilog=example(
    "musubi usage settle rsv_0123abcd --input-tokens 3100 --output-tokens 700 --model sonnet",
    "musubi usage settle rsv_0123abcd --input-tokens 3100 --output-tokens 700 --cost-usd 0.0182 --json",
))
@click.argument("reservation_id")
@_charge_opts
@click.option("--model", metavar="M", help="Model the call used; without --cost-usd its registry price sets the cost.")
@pass_state
def settle(state: CliState, reservation_id: str, input_tokens: int, output_tokens: int, requests: int,
           cost_usd: str | None, model: str | None, task_kind: str | None) -> None:
    """Record what the reserved call really used and close RESERVATION_ID.

    Without --cost-usd the engine prices it from the model registry for --model, as 'record' does;
    without either, or for a model with no price, it is refused (exit 2, the reservation still
    open) while a cost_usd limit applies to the holder, else settled at $0 with a warning.
    """
    data = state.client().call(calls.usage_settle(
        reservation_id, input_tokens, output_tokens, requests, cost_usd, model, task_kind
    ))

    def human(d: Settled) -> None:
        over = d["overshoot"]
        note = "; over the estimate by " + ", ".join(f"{v} {k}" for k, v in over.items()) if over else ""
        line(f"settled {d['reservation_id']}: {d['tokens']} tokens, {d['requests']} request(s), "
             f"${d['cost_usd']}{_priced(cost_usd, d)}{note}.")

    emit(state, data, human)


@cli_group.command(epilog=example("musubi usage release rsv_0123abcd"))
@click.argument("reservation_id")
@pass_state
def release(state: CliState, reservation_id: str) -> None:
    """Free RESERVATION_ID unused."""
    data = state.client().call(calls.usage_release(reservation_id))
    emit(state, data, lambda d: line(f"released {d['reservation_id']}."))


@cli_group.command(epilog=example("musubi usage reservations"))
@pass_state
def reservations(state: CliState) -> None:
    """List open reservations (yours; everyone's for quota managers)."""
    data = state.client().call(calls.reservations())

    def human(rows: list[ReservationRow]) -> None:
        table(("ID", "USER", "TOKENS", "REQUESTS", "COST USD", "CREATED (UTC)", "EXPIRES (UTC)"),
              ((r["reservation_id"], r["user"], r["tokens"], r["requests"], r["cost_usd"], when(r["created_at"]),
                when(r["expires_at"])) for r in rows),
              empty="no open reservations.", justify_right=("TOKENS", "REQUESTS", "COST USD"))

    emit(state, data, human)


@cli_group.command(epilog=example("musubi usage history", "musubi usage history --bucket day --since-hours 720 --json"))
@click.option("--bucket", type=click.Choice(["minute", "hour", "day", "month"]), default="hour", show_default=True)
@click.option("--since-hours", type=_count, metavar="HOURS", default=24, show_default=True, help="How far back to look.")
@click.option("--user", metavar="USER", help="Only this user's usage (others' needs 'quotas.manage').")
@pass_state
def history(state: CliState, bucket: str, since_hours: int, user: str | None) -> None:
    """Usage totals per time bucket (UTC)."""
    data = state.client().call(calls.usage_history(bucket, since_hours, user))

    def human(d: UsageHistory) -> None:
        table(("BUCKET (UTC)", "TOKENS", "REQUESTS", "COST USD"),
              ((when(r["bucket"]), r["tokens"], r["requests"], f"{Decimal(r['cost_micros']) / 1_000_000:.6f}") for r in d["rows"]),
              title=f"usage of tenant {d['tenant']} per {d['bucket']}", empty="no usage in this period.",
              justify_right=("TOKENS", "REQUESTS", "COST USD"))

    emit(state, data, human)

