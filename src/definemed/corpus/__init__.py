"""FineMed-de corpus stage: read → prefilter → LLM annotation → classifier → filter → dedup → shards."""
