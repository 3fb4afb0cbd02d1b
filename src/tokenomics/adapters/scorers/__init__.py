"""Scorers: turn articles into per-symbol sentiment and a 0-100 conviction."""
