"""Reusable widgets: mode bar, status bar, panels, quota gauges, empty states."""
