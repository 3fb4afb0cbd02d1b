"""Sentiment scorers: turn articles into per-symbol scores."""
