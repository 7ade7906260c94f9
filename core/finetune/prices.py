"""Training prices per base model: dollars per million *trained* tokens (dataset tokens × epochs).

The registry (core/models/registry.toml) prices inference only and its entries forbid unknown
fields, so training prices live here, with their source.  A fine-tuned model is registered with
the fine-tuned inference prices below (OpenAI charges more for a fine-tuned model than for its
base).  A base model missing here cannot be priced, so ``tune dataset`` refuses it by name.

Source: OpenAI's pricing page (https://openai.com/api/pricing, "Fine-tuning" table) as known to
this project on 2026-12-06; it was NOT re-read this session and third-party copies disagree
(docs/finetune.md says so).  Azure OpenAI prices training per token too but by region and
adds hosting per hour (UNCONFIRMED here): the Azure rows repeat OpenAI's per-token figures.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

SOURCE = "openai.com/api/pricing fine-tuning table (as of 2026-12-06, not re-read; see docs/finetune.md)"


@dataclass(frozen=True)
class TrainingPrice:
    training_per_mtok: Decimal  # per million trained tokens
    input_per_mtok: Decimal  # the fine-tuned model's inference prices
    output_per_mtok: Decimal
    cached_input_per_mtok: Decimal


_MINI = TrainingPrice(Decimal("5.00"), Decimal("0.80"), Decimal("3.20"), Decimal("0.20"))
_FULL = TrainingPrice(Decimal("25.00"), Decimal("3.00"), Decimal("12.00"), Decimal("0.75"))

TRAINING: dict[str, TrainingPrice] = {
    "gpt-4.1-mini": _MINI,
    "azure/gpt-4.1-mini": _MINI,
    "azure/gpt-4.1": _FULL,
}


def training_cost_micros(trained_tokens: int, price: TrainingPrice) -> int:
    """Micro-dollars for ``trained_tokens`` (a price per million tokens is micro-dollars per token)."""
    return int((price.training_per_mtok * trained_tokens).to_integral_value())
