"""Tests of the totals."""

import sys
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shop.cart import Cart  # noqa: E402
from shop.pricing import cart_total  # noqa: E402


def test_total_adds_the_tax():
    c = Cart()
    c.add("book", 2)
    assert cart_total(c, Decimal("0.10")) == Decimal("22.00")
