"""Merge stage: a continually pre-trained model back with its instruct parent, with mergekit.

config (pydantic) → prechecks → mergekit_config → run (merge, checks, sweep table) → summary.
"""
