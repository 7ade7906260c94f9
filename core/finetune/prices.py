"""Training prices per base model: dollars per million *trained* tokens (dataset tokens × epochs).

The registry (core/models/registry.toml) prices inference only and its entries forbid unknown
fields, so training prices live here, with their source.  A fine-tuned model is registered with
the fine-tuned inference prices below; a base model missing here cannot be priced, so ``tune
dataset`` refuses it by name.  docs/finetune.md#prices says the same for users.

Sources, read on 2026-12-06 through stored copies of the vendors' pages (the live pages could not
be fetched from here; check them before a large job):

- OpenAI, https://openai.com/api/pricing/ ("Fine-tuning our models"), a capture from early 2026 (it
  lists GPT-5.2 and a container price "starting March 31, 2026"), per 1M tokens:
  GPT-4.1 training $25.00, fine-tuned input $3.00 / cached input $0.75 / output $12.00;
  GPT-4.1 mini training $5.00, $0.80 / $0.20 / $3.20;  GPT-4.1 nano training $1.50, $0.20 / $0.05 / $0.80.
  https://platform.openai.com/docs/pricing ("Fine-tuning" table), a capture from mid-2025, gives the
  same 4.1 figures and also gpt-4o-2024-08-06 $25.00 ($3.75 / $1.875 / $15.00), gpt-4o-mini-2024-07-18
  $3.00 ($0.30 / $0.15 / $1.20) and gpt-3.5-turbo $8.00 ($3.00 / - / $6.00); the 2026 page no longer
  lists those three, so they are not priced here (the registry has none of them either).
- Azure OpenAI, https://learn.microsoft.com/azure/ai-foundry/openai/how-to/fine-tuning-cost-management
  (ms.date 2026-02-11): training is billed per token × epochs (global standard training 10-30 % below
  regional, developer training 50 % below global); a deployed fine-tuned model is billed per token
  *at the base model's rate* plus hosting, $1.70 an hour (Standard and Global Standard; none on the
  Developer tier).  So Azure rows take the base model's inference prices.  Azure's per-token training
  prices are on https://azure.microsoft.com/pricing/details/cognitive-services/openai-service/, whose
  figures are drawn by script and could not be read: the Azure training prices below are OpenAI's,
  UNCONFIRMED (the Learn page's own example, "for example purposes only", uses $2 per 1M for
  GPT-4.1 global training; OpenAI's $25 makes the estimate and the quota check err on the high side).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

OPENAI_SOURCE = "openai.com/api/pricing fine-tuning prices (read 2026-12-06 from a 2026 copy; docs/finetune.md)"
AZURE_SOURCE = ("training: OpenAI's price, Azure's UNCONFIRMED; inference: the base model's rate, plus $1.70/hour "
                "hosting (learn.microsoft.com fine-tuning cost management, read 2026-12-06; docs/finetune.md)")


@dataclass(frozen=True)
class TrainingPrice:
    training_per_mtok: Decimal  # per million trained tokens
    # The fine-tuned model's inference prices; None: the base model's (Azure bills a fine-tuned model at them).
    input_per_mtok: Decimal | None = None
    output_per_mtok: Decimal | None = None
    cached_input_per_mtok: Decimal | None = None
    source: str = OPENAI_SOURCE


TRAINING: dict[str, TrainingPrice] = {
    "gpt-4.1-mini": TrainingPrice(Decimal("5.00"), Decimal("0.80"), Decimal("3.20"), Decimal("0.20")),
    # Not in the shipped registry: priced for a tenant that imports them (musubi models import).
    "gpt-4.1": TrainingPrice(Decimal("25.00"), Decimal("3.00"), Decimal("12.00"), Decimal("0.75")),
    "gpt-4.1-nano": TrainingPrice(Decimal("1.50"), Decimal("0.20"), Decimal("0.80"), Decimal("0.05")),
    "azure/gpt-4.1-mini": TrainingPrice(Decimal("5.00"), source=AZURE_SOURCE),
    "azure/gpt-4.1": TrainingPrice(Decimal("25.00"), source=AZURE_SOURCE),
}


def training_cost_micros(trained_tokens: int, price: TrainingPrice) -> int:
    """Micro-dollars for ``trained_tokens`` (a price per million tokens is micro-dollars per token)."""
    return int((price.training_per_mtok * trained_tokens).to_integral_value())
