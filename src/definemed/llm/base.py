"""The backend interface and its configuration.

Fail closed: a backend never invents a value. Per chat, `generate` returns the text or a
`Failed`, and `score_options` the options' log-probabilities or a `Failed` (no log-probs, an
option missing from the server's top-k, an HTTP error, a non-finite value). Callers count the
failures by ``reason`` and leave those items out of every statistic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Optional, Protocol, Union

from pydantic import Field

from definemed.config import Dtype, StrictModel

Message = dict[str, str]

# The reasons a backend reports (callers add their own, e.g. "unparseable_output").
HTTP_ERROR = "http_error"
EMPTY_OUTPUT = "empty_output"
NO_LOGPROBS = "no_logprobs"
OPTION_NOT_IN_TOP = "option_not_in_top_logprobs"
NON_FINITE = "non_finite_logprob"


@dataclass(frozen=True)
class Failed:
    """One chat the model gave no usable answer for; ``reason`` is a short slug that is counted,
    ``detail`` a human hint (an HTTP status, the missing option)."""

    reason: str
    detail: str = ""

    def as_dict(self) -> dict:
        return {"status": "failed", "reason": self.reason, **({"detail": self.detail} if self.detail else {})}


Completion = Union[str, Failed]
OptionScores = Union[list[float], Failed]


def per_chat(prefix: str | list[str], n: int) -> list[str]:
    """``prefix`` as one string per chat (a list must have exactly ``n``)."""
    if isinstance(prefix, str):
        return [prefix] * n
    if len(prefix) != n:
        raise ValueError(f"{len(prefix)} prefixes for {n} chats")
    return list(prefix)


def checked_scores(scores: list[float]) -> OptionScores:
    """``scores`` if every one is a finite log-probability, else a failure (a NaN from an
    overflowing fp16 forward must not become a verdict)."""
    if all(math.isfinite(s) for s in scores):
        return scores
    return Failed(NON_FINITE)


class BackendConfig(StrictModel):
    kind: Literal["local", "openai"] = "local"
    model: str = "smollm2-135m-instruct"  # local: bundled name/folder/hub id; openai: served model name
    base_url: Optional[str] = None  # openai: e.g. http://localhost:8000/v1 (vLLM, llama.cpp server)
    api_key_env: str = "OPENAI_API_KEY"  # name of the environment variable; the key is never stored
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    batch_size: int = Field(8, ge=1)  # local: prompts per forward pass
    dtype: Dtype = "float32"
    trust_remote_code: bool = False


class LLMBackend(Protocol):
    name: str

    def generate(self, chats: list[list[Message]], max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int = 0) -> list[Completion]:
        """One completion per chat (assistant turn), or `Failed` (HTTP error, empty output)."""

    def score_options(self, chats: list[list[Message]], options: list[str],
                      prefix: str | list[str] = "") -> list[OptionScores]:
        """Per chat, the log-probability of each option as the first token(s) of the assistant turn,
        after the optional assistant ``prefix``, or `Failed` when the model did not give all of them.
        ``prefix`` is one string for every chat or a list with one per chat (the judge's verdict
        prefix names each request's fence, see `definemed.llm.injection`)."""

    def fingerprint(self) -> str:
        """Everything about the model that can change an answer (see `definemed.llm.fingerprint`)."""


def make_backend(cfg: BackendConfig) -> LLMBackend:
    if cfg.kind == "local":
        from definemed.llm.local import LocalBackend

        return LocalBackend(cfg)
    from definemed.llm.openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(cfg)


def connect_backend(cfg: BackendConfig) -> LLMBackend:
    """`make_backend` for work: a server backend is preflighted (``GET /models``), so an unreachable
    server, a wrong URL, a refused API key or an unknown model name is one `UserError` line before
    the first item, not a failed item per request."""
    backend = make_backend(cfg)
    preflight = getattr(backend, "preflight", None)
    if preflight is not None:
        preflight()
    return backend
