"""Evaluation: benchmarks, perplexity, generation, pairwise judging, failure modes."""
