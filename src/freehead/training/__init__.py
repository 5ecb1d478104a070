"""Training: losses, data, checkpoints and the loop every part shares."""
