"""Musubi Workstation."""
