"""One small backend interface for every LLM call (annotator, judge, eval generation).

`generate` answers chats; `score_options` returns log-probabilities of candidate
continuations (e.g. the score digits "0".."5"), which small models handle better than
free-form JSON.
"""

from definemed.llm.base import LLMBackend, connect_backend, make_backend

__all__ = ["LLMBackend", "connect_backend", "make_backend"]
