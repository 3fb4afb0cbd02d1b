"""Brokers: where orders go. Each speaks OrderRequest in and OrderUpdate out."""
