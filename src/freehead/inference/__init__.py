"""Inference: reading faces, motion, smoothing, masks and writing results."""
