"""The cost of usage posted without ``cost_usd``: priced by the engine from the model registry.

``POST /v1/usage``, ``POST /v1/reservations`` and settle take ``cost_usd``; without it the engine
prices the usage at the registry's prices of the named ``model`` (the tenant's own models too), so
every client, not only the CLI, is charged the same (docs/quotas.md#pricing).

When it cannot be priced (no model named, or one the registry does not know), the cost is unknown.
An auditor must be able to trust a ``cost_usd`` limit, so the request is then refused (400
``unpriced_usage``, nothing changed) while a ``cost_usd`` limit applies to the holder: charging $0
would pass that limit unnoticed.  Otherwise it goes through at $0 with ``priced: false`` and a
``warning`` in the answer, and ``cost_source: "unpriced"`` in its audit event, so such rows can be
found later.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from core import limits
from core.errors import BadRequest
from core.quotas import Quota, micros_to_usd

if TYPE_CHECKING:
    from core.models.registry import ModelSpec, Registry

# What each operation says it left unchanged when it refuses.
UNCHANGED = {
    "record": "Nothing was charged.",
    "reserve": "Nothing was held.",
    "settle": "Nothing was charged and the reservation is still open.",
}
GIVE = "give the cost as cost_usd (musubi usage ... --cost-usd USD, e.g. 0.0105)"


@dataclass(frozen=True)
class Cost:
    """Micro-dollars to charge or hold and where they came from: ``given``, ``registry`` or ``unpriced``."""

    micros: int
    source: str
    warning: str | None = None

    def answer(self) -> dict[str, Any]:
        """The keys every usage answer carries about its cost."""
        return {"priced": self.source != "unpriced", "warning": self.warning}


def cost_of(
    verb: str, given: int | None, model: str | None, registry: Callable[[], Registry] | None, holder: str,
    quotas: Iterable[Quota], price: Callable[[ModelSpec], int],
) -> Cost:
    """The cost of a ``verb`` (record, reserve, settle): ``given`` as is, else ``price`` of ``model``.

    ``registry`` gives the caller's tenant's registry (read only when there is something to price).

    Unpriceable: refused (BadRequest ``unpriced_usage``) while a cost_usd limit in ``quotas`` (those
    applying to ``holder``) exists, else $0 with a warning.  A priced cost beyond what one charge
    may carry (limits.COST) is refused like a given one.
    """
    if given is not None:
        return Cost(given, "given")
    reg: Registry | None = None
    if not model:
        reason = "no model was named to price it by"
        fix = "name the model (model, --model M) to price it from the model registry"
    elif registry is None:  # only an engine built without its routes (tests of the services alone)
        reason = "this engine has no model registry loaded"
        fix = "restart the engine"
    else:
        reg = registry()
        if model not in reg:
            reason = f"model {model!r} has no price: it is not in the model registry"
            fix = "add the model with its prices (musubi models import, or [[models]] in config.toml; docs/models.md)"
        else:
            spec = reg.get(model)
            micros = price(spec)
            if micros > limits.COST.hi:
                raise BadRequest(
                    f"the cost of this usage at the registry's prices of {spec.id}, ${micros_to_usd(micros)}, is more "
                    f"than one {verb} may carry (${micros_to_usd(limits.COST.hi)}). {UNCHANGED[verb]} Split it "
                    "into smaller charges.", field="cost_usd", range=limits.COST.as_json())
            return Cost(micros, "registry")
    limit = next((q for q in quotas if q.metric == "cost_usd"), None)
    if limit is not None:
        if reg is not None and model:  # close names only when refusing: difflib costs ms, too much per record
            close = reg.close_matches(model)
            reason += f" (did you mean {', '.join(close)}?)" if close else ""
        raise BadRequest(
            f"cannot {verb} this usage without a cost: {reason}, and a cost_usd limit ({limit.describe()}) applies "
            f"to {holder}, which a $0 charge would pass unnoticed. {UNCHANGED[verb]} {GIVE[0].upper()}{GIVE[1:]}, "
            f"or {fix}.",
            code="unpriced_usage", field="cost_usd", model=model,
        )
    return Cost(0, "unpriced", f"not priced: {reason}, so it counts $0 (no cost_usd limit applies to {holder}). "
                               f"To count its cost, {GIVE}, or {fix}.")
