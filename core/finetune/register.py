"""Registering a fine-tuned model in its tenant's registry override, with its prices and lifecycle.

The entry goes into ``$MUSUBI_HOME/registry/tenant-<hex>.json`` (core/models/overrides.py), the
same file ``musubi models import`` writes for the tenant, so every registry view of the tenant
(routing, cost, ``musubi models list``) sees it and no other tenant does.  Lifecycle: a
fine-tuned model is served only as long as its base model, so it takes the base's status and
dates; its replacement is the base model.  Prices: the fine-tuned rates of core/finetune/prices.py,
or the base model's where the vendor bills a fine-tuned model at them (Azure).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.finetune.prices import TrainingPrice
from core.finetune.records import TuneJob
from core.models.overrides import OverrideStore, merge_entries
from core.models.registry import ModelSpec


def model_entry(rec: TuneJob, base: ModelSpec, price: TrainingPrice, vendor_model: str, today: date) -> dict[str, Any]:
    """The registry entry of the fine-tuned model (checked by :class:`ModelSpec` before it is stored)."""
    def rate(own: Decimal | None, of_base: Decimal) -> str:
        return str(of_base if own is None else own)  # None: billed at the base model's rate (Azure)

    entry: dict[str, Any] = {
        "id": f"{base.provider}/{vendor_model}", "provider": base.provider,
        "context_window": base.context_window, "max_output": base.max_output,
        "input_per_mtok": rate(price.input_per_mtok, base.input_per_mtok),
        "output_per_mtok": rate(price.output_per_mtok, base.output_per_mtok),
        "cached_input_per_mtok": rate(price.cached_input_per_mtok, base.cached_input_per_mtok),
        "tokenizer": base.tokenizer,
        "tier": base.tier, "capabilities": list(base.capabilities), "prices_checked": today.isoformat(),
        "source": price.source, "status": base.status, "replacement": base.id,
        "lifecycle_source": f"fine-tuned from {base.id} by job {rec.vendor_job_id} ({rec.tune_id}); "
                            "retires with its base model",
    }
    for k in ("deprecated_on", "retires_on"):
        v = getattr(base, k)
        if v is not None:
            entry[k] = v.isoformat()
    if base.provider == "azure":
        # Azure serves a fine-tuned model only once it is deployed; the deployment is expected under its name.
        entry["deployment"] = vendor_model
    ModelSpec.model_validate({**entry, "origin": "import"})
    return entry


def register_model(home: Path, rec: TuneJob, base: ModelSpec, price: TrainingPrice, vendor_model: str,
                   today: date) -> str:
    """Add (or update) the model in the tenant's override; its registry id."""
    entry = model_entry(rec, base, price, vendor_model, today)
    store = OverrideStore(home)
    data = store.read("tenant", rec.tenant_id)
    imported = [*data.get("imported", []), {"source": f"fine-tuning {rec.tune_id}", "at": today.isoformat(),
                                            "by": rec.created_by, "models": [entry["id"]]}]
    store.write("tenant", rec.tenant_id, {"entries": merge_entries(data["entries"], [entry]),
                                           "imported": imported[-50:]})
    return str(entry["id"])
