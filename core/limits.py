"""The range of every number a request may carry, chosen so that storage can hold it.

Why at the boundary: the engine acknowledges a write once it is journaled, before
DuckDB has it, so a value DuckDB would refuse must be refused here, with a 400 that
names the field and the range (docs/api.md#ranges lists them all).

Storage keeps counts and micro-dollars in ``BIGINT`` columns (signed 64-bit, at most
9,223,372,036,854,775,807 ≈ 9.2e18; core/storage/migrations/*.sql).  The ranges leave
room for what is derived from them, so no derived value can reach that either:

- a ledger row's ``tokens`` is ``input_tokens + output_tokens`` ≤ 2e15;
- a cost of at most $1e9 is at most 1e15 micro-dollars;
- a settle may charge at most twice what was reserved (docs/quotas.md), ≤ 2e15;
- a window's usage stays within twice its limit (docs/quotas.md#worst-case-overshoot),
  and a limit is at most 1e18, so 2e18 fits;
- sums over the ledger (history, start-up counters) are computed by DuckDB as HUGEINT.

This module is the one place these numbers live; the request models of the API
(core/api/models.py) name the range of each field and check it with :func:`count`
and :func:`dollars` at the HTTP boundary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import MAX_EMAX, MIN_EMIN, Decimal, InvalidOperation, localcontext

from core.errors import BadRequest

BIGINT_MAX = 2**63 - 1
MICROS = 1_000_000
_MAX_TEXT = 40  # longest numeral worth parsing; anything longer is out of every range


@dataclass(frozen=True)
class Range:
    """Inclusive bounds of a whole number, in ``unit`` (micro-dollars when ``money``)."""

    lo: int
    hi: int
    unit: str
    money: bool = False

    def text(self) -> str:
        """The range as users give it: dollars for money, else a whole number of ``unit``."""
        if self.money:
            return f"dollars from {_usd(self.lo)} to {_usd(self.hi)}, at most 6 decimals"
        return f"a whole number of {self.unit} from {self.lo:,} to {self.hi:,}"

    def as_json(self) -> dict[str, object]:
        lo, hi = (_usd(self.lo), _usd(self.hi)) if self.money else (self.lo, self.hi)
        return {"min": lo, "max": hi, "unit": "usd" if self.money else self.unit}


def _usd(micros: int) -> str:
    whole, frac = divmod(micros, MICROS)
    return f"{whole:,}" + (f".{frac:06d}".rstrip("0") if frac else "")


# -- the ranges -------------------------------------------------------------------------------

TOKENS = Range(0, 10**15, "tokens")  # one field of one charge or reservation
REQUESTS = Range(0, 10**9, "requests")
COST = Range(0, 10**9 * MICROS, "usd", money=True)  # one charge or reservation: $1e9
TTL_S = Range(1, 86_400, "seconds")
LIMIT_COUNT = Range(0, 10**18, "tokens or requests")  # a quota's limit_value
LIMIT_COST = Range(0, 10**12 * MICROS, "usd", money=True)  # $1e12 = 1e18 micro-dollars
SINCE_HOURS = Range(0, 24 * 366 * 100, "hours")  # usage history: a century back
CONTEXT_BUDGET = Range(1, 10_000_000, "tokens")  # a context pack's budget (more than any model reads at once)
LINE = Range(1, 10**9, "lines")  # a trace link's line number
JOBS_LIMIT = Range(1, 1_000, "jobs")  # GET /v1/jobs?limit=
SEARCH_K = Range(1, 100, "results")  # POST /v1/search k
MAX_QUERY_LEN = 2_000  # a search query's characters
MAX_QUERIES = 1_000  # queries in one POST /v1/search/batch
# -- runs (issue 12, core/api/runs.py) --
RUN_BUDGET_TOKENS = Range(1, 10**15, "tokens")  # a run's token budget
RUN_BUDGET_COST = Range(1, 10**9 * MICROS, "usd", money=True)  # a run's dollar budget
RUN_TURNS = Range(1, 100_000, "model calls")  # turn caps per run and per step
GATE_TIMEOUT_S = Range(1, 30 * 86_400, "seconds")  # how long an approval gate waits
# -- local embedder (issue 19, core/api/tune_embed.py) --
TUNE_BUDGET_S = Range(60, 86_400, "seconds")  # a tuning job's training time budget
TUNE_VERSION = Range(0, 1_000_000, "versions")  # a tuned embedder version (0: the base model)

ALERT_MIN_EXCLUSIVE, ALERT_MAX = 0.0, 10.0  # a threshold is a fraction of the limit in (0, 10]
MAX_ALERTS = 16
SETTLE_FACTOR = 2  # a settle may charge at most this times what was reserved (docs/quotas.md)

MAX_MODEL_LEN = 200
MAX_REASON_LEN = 1_000
MAX_PATH_LEN = 4_096
MAX_DEPTH = 32  # nesting of a request body

# Every numeric field of every write route, for docs/api.md#ranges (tests/docs checks it).
# -- provider fine-tuning (issue 19) --
TUNE_EPOCHS = Range(1, 50, "epochs")  # OpenAI's n_epochs bounds
TUNE_POLL_MS = Range(50, 3_600_000, "milliseconds")  # how often the engine asks the vendor about a job

FIELDS: dict[str, Range] = {
    "input_tokens": TOKENS,
    "output_tokens": TOKENS,
    "tokens": TOKENS,
    "requests": REQUESTS,
    "cost_usd": COST,
    "ttl_s": TTL_S,
    "limit (tokens, requests)": LIMIT_COUNT,
    "limit (cost_usd)": LIMIT_COST,
    "since_hours": SINCE_HOURS,
    "budget": CONTEXT_BUDGET,
    "retrieval_tokens": TOKENS,
    "line": LINE,
    "limit (jobs)": JOBS_LIMIT,
    "k": SEARCH_K,
    # runs (issue 12)
    "budget_tokens": RUN_BUDGET_TOKENS,
    "budget_usd": RUN_BUDGET_COST,
    "max_turns, max_step_turns": RUN_TURNS,
    "gate_timeout_s": GATE_TIMEOUT_S,
    # provider fine-tuning (issue 19)
    "epochs": TUNE_EPOCHS,
    "poll_ms": TUNE_POLL_MS,
    # local embedder (issue 19)
    "budget_s": TUNE_BUDGET_S,
    "version": TUNE_VERSION,
}


# -- checks -----------------------------------------------------------------------------------


def _show(value: object) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def _refuse(field: str, value: object, why: str, r: Range) -> BadRequest:
    return BadRequest(f"{field} {_show(value)} {why}: give {r.text()}.", field=field, range=r.as_json())


def count(value: object, field: str, r: Range) -> int:
    """A whole number within ``r``: a JSON integer, an integral float, or decimal digits as text.

    Text is what the CLI sends; ``_`` separators are allowed there (``1_000``).
    """
    n: int | None = None
    if isinstance(value, bool):
        n = None
    elif isinstance(value, int):
        n = value
    elif isinstance(value, float):
        n = int(value) if math.isfinite(value) and value.is_integer() else None
    elif isinstance(value, str):
        s = value.strip().replace("_", "")
        body = s[1:] if s[:1] in "+-" else s
        if body.isascii() and body.isdigit():
            if len(body) > _MAX_TEXT:
                raise _refuse(field, value, "is out of range", r)
            n = int(s)
    if n is None:
        raise _refuse(field, value, "is not a whole number", r)
    if n < 0 <= r.lo:
        raise _refuse(field, value, "is negative", r)
    if not r.lo <= n <= r.hi:
        raise _refuse(field, value, "is out of range", r)
    return n


def dollars(value: object, field: str, r: Range) -> int:
    """A dollar amount (number or text) as exact integer micro-dollars within ``r``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str)) or (isinstance(value, str) and len(value) > _MAX_TEXT):
        raise _refuse(field, value, "is not a number", r)
    try:
        d = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise _refuse(field, value, "is not a number", r) from None
    if not d.is_finite():
        raise _refuse(field, value, "is not a finite number", r)
    if d < 0:
        raise _refuse(field, value, "is negative", r)
    if d > Decimal(r.hi).scaleb(-6):  # compared exactly, before any arithmetic that could round
        raise _refuse(field, value, "is out of range", r)
    exp = d.as_tuple().exponent
    if isinstance(exp, int) and exp >= -6:
        # At most 6 decimals and at most 1e12 dollars: a coefficient of at most 19 digits, so the
        # default 28-digit context scales it exactly (the common case, without a local context).
        micros = d.scaleb(6)
    else:
        with localcontext() as ctx:
            # Exact for every numeral short enough to get here, tiny exponents included
            # (1e-999999999 must not round to 0 and pass as whole micro-dollars).
            ctx.prec, ctx.Emin, ctx.Emax = 2 * _MAX_TEXT + 8, MIN_EMIN, MAX_EMAX
            micros = d.scaleb(6)
            if micros != micros.to_integral_value():
                raise _refuse(field, value, "has more than 6 decimal places (micro-dollar precision)", r)
    n = int(micros)
    if n < r.lo:
        raise _refuse(field, value, "is out of range", r)
    return n


def text(value: object, field: str, max_len: int, *, required: bool = False) -> str | None:
    """An optional (or ``required``) string field of at most ``max_len`` characters."""
    if value is None and not required:
        return None
    if not isinstance(value, str) or (required and not value):
        need = "a non-empty string" if required else "a string, or left out"
        raise BadRequest(f"{field} must be {need} (got {type(value).__name__}).", field=field)
    if len(value) > max_len:
        raise BadRequest(f"{field} is {len(value):,} characters long; at most {max_len:,} are allowed.", field=field)
    return value
