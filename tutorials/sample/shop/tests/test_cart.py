"""Tests of the cart (run: python -m pytest tests from the project folder)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from shop.cart import Cart  # noqa: E402


def test_add_counts_quantities():
    """REQ-CART-001"""
    c = Cart()
    c.add("book", 2)
    c.add("book")
    assert c.lines == {"book": 3}


def test_remove_deletes_every_unit():
    """REQ-CART-002"""
    c = Cart()
    c.add("apple", 5)
    c.remove("apple")
    assert "apple" not in c.lines
