"""The shopping cart."""

from __future__ import annotations


class Cart:
    """Product ids and quantities, in memory (ADR-001)."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}

    def add(self, product: str, quantity: int = 1) -> None:
        # REQ-CART-001: add the quantity; a product already in the cart grows
        if quantity < 1:
            raise ValueError("quantity must be at least 1")
        self.lines[product] = self.lines.get(product, 0) + quantity

    def remove(self, product: str) -> None:
        # REQ-CART-002: every unit of the product goes
        self.lines.pop(product, None)
