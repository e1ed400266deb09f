"""Continual pre-training: token store, packing, the training loop with exact resume."""
