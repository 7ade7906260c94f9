"""Price arithmetic in exact decimals, rounded once to integer micro-dollars.

A price of $X per million tokens is X micro-dollars per token, so a request's cost
in micro-dollars is ``uncached * input + cached * cached_input + output * output``
with the per-million prices used as they are.  Sums stay exact (``Decimal``) and
are rounded once at the end: the expected figure half-up, the low figure down
and the high figure up, so a range never understates its own bounds.

Long-context tiers (OpenAI above 272k, Gemini above 200k prompt tokens) apply to
every token of a request whose prompt exceeds the threshold, as the providers
bill them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_UP, Decimal

from core.errors import BadRequest
from core.models.registry import ModelSpec
from core.quotas import micros_to_usd

__all__ = ["Rates", "hold_cost", "rates_for", "request_cost", "to_micros", "micros_to_usd", "usage_cost"]

ROUNDING = {"low": ROUND_FLOOR, "expected": ROUND_HALF_UP, "high": ROUND_CEILING}


@dataclass(frozen=True)
class Rates:
    """Micro-dollars per token for one request."""

    input: Decimal
    cached_input: Decimal
    output: Decimal
    long_context: bool = False


def rates_for(model: ModelSpec, prompt_tokens: int) -> Rates:
    """The rates of one request whose prompt (uncached + cached) has ``prompt_tokens`` tokens."""
    lc = model.long_context
    if lc is not None and prompt_tokens > lc.threshold:
        return Rates(lc.input_per_mtok, lc.cached_input_per_mtok, lc.output_per_mtok, True)
    return Rates(model.input_per_mtok, model.cached_input_per_mtok, model.output_per_mtok)


def request_cost(model: ModelSpec, uncached: int, cached: int, output: int) -> Decimal:
    """Exact cost in micro-dollars (unrounded) of one request."""
    for name, v in (("uncached input", uncached), ("cached input", cached), ("output", output)):
        if v < 0:
            raise BadRequest(f"{name} tokens must be >= 0 (got {v}).")
    r = rates_for(model, uncached + cached)
    return uncached * r.input + cached * r.cached_input + output * r.output


def to_micros(amount: Decimal, bound: str = "expected") -> int:
    """Round an exact micro-dollar amount to an integer: low floors, high ceils, expected half-up."""
    return int(amount.quantize(Decimal(1), rounding=ROUNDING[bound]))



def usage_cost(model: ModelSpec, input_tokens: int, output_tokens: int, requests: int = 1) -> int:
    """Micro-dollars (rounded half-up) of usage reported as totals over ``requests`` requests.

    For usage posted without a cost (``POST /v1/usage``, settle; docs/quotas.md#pricing): no cached split is
    known, so every input token is priced uncached (an upper bound where the vendor cached some);
    a long-context tier applies when the average prompt per request passes its threshold.
    """
    if input_tokens < 0 or output_tokens < 0:
        raise BadRequest(f"token counts must be >= 0 (got {input_tokens} input, {output_tokens} output).")
    per_request = -(-input_tokens // requests) if requests > 0 else input_tokens
    r = rates_for(model, per_request)
    return to_micros(input_tokens * r.input + output_tokens * r.output)


def hold_cost(model: ModelSpec, tokens: int, requests: int = 1) -> int:
    """Micro-dollars (rounded up) to hold for ``tokens`` not yet split into input and output.

    For a reservation posted without a cost: every token at the dearer of the input and output
    rates, and at the long-context tier when the tokens per request pass its threshold, so the hold
    never understates what a call of that size can cost (settle charges what it really used).
    """
    if tokens < 0:
        raise BadRequest(f"tokens must be >= 0 (got {tokens}).")
    per_request = -(-tokens // requests) if requests > 0 else tokens
    r = rates_for(model, per_request)
    return to_micros(tokens * max(r.input, r.output), "high")
