"""Musubi Workstation: headless engine (no UI imports)."""

__version__ = "0.1.0"
