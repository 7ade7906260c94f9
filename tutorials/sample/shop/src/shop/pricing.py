"""Prices and the cart total with the shop's sales tax."""

from __future__ import annotations

from decimal import Decimal

from shop.cart import Cart

PRICES: dict[str, Decimal] = {"apple": Decimal("0.50"), "book": Decimal("10.00"), "lamp": Decimal("24.90")}


def cart_total(cart: Cart, tax_rate: Decimal = Decimal("0.10")) -> Decimal:
    """Sum of price times quantity over the cart's lines, plus the sales tax, rounded to cents."""
    subtotal = sum((PRICES[p] * q for p, q in cart.lines.items()), Decimal("0"))
    return (subtotal * (1 + tax_rate)).quantize(Decimal("0.01"))
