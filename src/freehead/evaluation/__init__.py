"""Evaluation: metrics and protocols on held-out data."""
