"""The activation rule: R@10 must rise by at least 0.01 and MRR must not drop."""

from __future__ import annotations

import pytest

from core.tune.rule import decide

CUR = {"r1": 0.5, "r10": 0.80, "mrr": 0.60}


@pytest.mark.parametrize(("tuned", "ok", "words"), [
    ({"r1": 0.6, "r10": 0.85, "mrr": 0.65}, True, "activated"),
    ({"r1": 0.5, "r10": 0.81, "mrr": 0.60}, True, "activated"),  # exactly +0.01, MRR equal: enough
    ({"r1": 0.5, "r10": 0.809, "mrr": 0.70}, False, "R@10 must rise by at least 0.01"),
    ({"r1": 0.7, "r10": 0.90, "mrr": 0.599}, False, "MRR must not drop"),
    ({"r1": 0.4, "r10": 0.70, "mrr": 0.50}, False, "R@10 must rise"),  # worse everywhere
])
def test_rule(tuned: dict[str, float], ok: bool, words: str) -> None:
    got, why = decide(CUR, tuned)
    assert got is ok
    assert words in why and "0.800 ->" in why
