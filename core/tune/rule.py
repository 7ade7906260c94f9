"""The activation rule for a tuned embedder (light, pure): better on held-out data, or not at all.

A tuned model replaces the current one only if, on the held-out pairs (files never trained on),
its recall@10 is at least ``MIN_R10_GAIN`` higher and its MRR is not lower (docs/finetune.md).
"""

from __future__ import annotations

from collections.abc import Mapping

MIN_R10_GAIN = 0.01

__all__ = ["MIN_R10_GAIN", "decide"]


def decide(current: Mapping[str, float], tuned: Mapping[str, float]) -> tuple[bool, str]:
    """(activate?, why) from the two models' held-out measures (keys ``r1``, ``r10``, ``mrr``)."""
    gain = tuned["r10"] - current["r10"]
    measures = (f"R@10 {current['r10']:.3f} -> {tuned['r10']:.3f} ({gain:+.3f}), "
                f"MRR {current['mrr']:.3f} -> {tuned['mrr']:.3f}")
    if gain < MIN_R10_GAIN - 1e-9:
        return False, f"kept the current model: {measures}; R@10 must rise by at least {MIN_R10_GAIN}"
    if tuned["mrr"] < current["mrr"] - 1e-9:
        return False, f"kept the current model: {measures}; MRR must not drop"
    return True, f"activated: {measures}"
