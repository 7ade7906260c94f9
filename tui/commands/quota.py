"""``musubi quota set|status|remove``: hard limits per UTC window, with alert thresholds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

from core.api import calls
from tui.output import CliState, emit, example, group, line, pass_state, table, when

if TYPE_CHECKING:
    from core.api.models import QuotaRow, QuotaStatus

METRICS = ("tokens", "requests", "cost_usd")
PERIODS = ("minute", "hour", "day", "month")

cli_group = group(
    "quota",
    "Set and show usage limits. Limits hold per UTC calendar window (minute, hour, day, month) "
    "for the tenant or one user in it; hard limits fail closed: a charge that would exceed one is "
    "refused whole.",
    "musubi quota status",
    "musubi quota set tokens 500000 --per day --alert 0.8,1.0",
    "musubi quota set cost_usd 25.50 --per month --user alice",
)

_per = click.option("--per", "period", required=True, type=click.Choice(PERIODS), help="The window.")
_user = click.option("--user", metavar="USER", help="Limit one user within the tenant (default: the whole tenant).")


def quota_rows(quotas: list[QuotaRow]) -> list[list[Any]]:
    """Table rows of quota status entries (shared with the usage commands)."""
    return [
        [q["metric"], q["period"], q["user"] or "(tenant)", q["used"], q["reserved"], q["limit"], q["remaining"],
         f"{q['fraction_used'] * 100:.1f}%", when(q["resets_at"]), q["alerts"]]
        for q in quotas
    ]


QUOTA_COLUMNS = ("METRIC", "PER", "SCOPE", "USED", "RESERVED", "LIMIT", "REMAINING", "USE", "RESETS AT (UTC)", "ALERTS")
_RIGHT = ("USED", "RESERVED", "LIMIT", "REMAINING", "USE")


@cli_group.command(
    "set",
    context_settings={"ignore_unknown_options": True},  # so "-5" reaches the engine, which names the problem
    epilog=example(
        "musubi quota set tokens 1000000 --per day",
        "musubi quota set requests 60 --per minute --user bob",
        "musubi quota set cost_usd 100 --per month --alert 0.5,0.8,1.0",
    ),
)
@click.argument("metric", type=click.Choice(METRICS))
@click.argument("limit")
@_per
@_user
@click.option("--alert", "alerts", metavar="F,F", help="Alert thresholds as fractions of the limit, e.g. 0.8,1.0.")
@pass_state
def set_(state: CliState, metric: str, limit: str, period: str, user: str | None, alerts: str | None) -> None:
    """Set the hard LIMIT of METRIC per window (cost_usd in dollars, e.g. 12.50)."""
    data = state.client().call(calls.quota_set(metric, period, limit, user, alerts))

    def human(q: QuotaRow) -> None:
        who = f"user {q['user']}" if q["user"] else "the tenant"
        al = f", alerts at {', '.join(str(a) for a in q['alerts'])}" if q["alerts"] else ""
        line(f"quota set: {q['limit']} {q['metric']} per {q['period']} for {who}{al} "
             f"(used {q['used']}, resets at {q['resets_at']}).")

    emit(state, data, human)


@cli_group.command(epilog=example("musubi quota status", "musubi quota status --user bob --json"))
@_user
@pass_state
def status(state: CliState, user: str | None) -> None:
    """Show used, reserved, limit, remaining and reset time of every quota that applies."""
    data = state.client().call(calls.quota_status(user))

    def human(d: QuotaStatus) -> None:
        table(QUOTA_COLUMNS, quota_rows(d["quotas"]), title=f"quotas of tenant {d['tenant']}",
              empty="no quotas (usage is unlimited).", justify_right=_RIGHT)

    emit(state, data, human)


@cli_group.command(epilog=example("musubi quota remove requests --per minute --user bob"))
@click.argument("metric", type=click.Choice(METRICS))
@_per
@_user
@pass_state
def remove(state: CliState, metric: str, period: str, user: str | None) -> None:
    """Remove the METRIC per --per quota (of the tenant, or of --user)."""
    data = state.client().call(calls.quota_remove(metric, period, user))
    who = f" for user {user}" if user else ""
    emit(state, data, lambda d: line(f"removed the {metric} per {period} quota{who} (id {d['quota_id']})."))
