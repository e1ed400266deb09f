"""The backend interface and its configuration."""

from __future__ import annotations

from typing import Literal, Optional, Protocol

from pydantic import Field

from definemed.config import StrictModel

Message = dict[str, str]


class BackendConfig(StrictModel):
    kind: Literal["local", "openai"] = "local"
    model: str = "smollm2-135m-instruct"  # local: bundled name/folder/hub id; openai: served model name
    base_url: Optional[str] = None  # openai: e.g. http://localhost:8000/v1 (vLLM, llama.cpp server)
    api_key_env: str = "OPENAI_API_KEY"  # name of the environment variable; the key is never stored
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(60.0, gt=0)
    max_retries: int = Field(3, ge=0)
    batch_size: int = Field(8, ge=1)  # local: prompts per forward pass
    dtype: str = "float32"
    trust_remote_code: bool = False


class LLMBackend(Protocol):
    name: str

    def generate(self, chats: list[list[Message]], max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int = 0) -> list[str]:
        """One completion per chat (assistant turn)."""

    def score_options(self, chats: list[list[Message]], options: list[str], prefix: str = "") -> list[list[float]]:
        """Per chat, the log-probability of each option as the first token(s) of the assistant turn,
        after the optional assistant ``prefix``."""


def make_backend(cfg: BackendConfig) -> LLMBackend:
    if cfg.kind == "local":
        from definemed.llm.local import LocalBackend

        return LocalBackend(cfg)
    from definemed.llm.openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(cfg)
