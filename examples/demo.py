"""Placeholder demo (replaced below)."""
