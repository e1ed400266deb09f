"""OpenAI-compatible HTTP backend (vLLM, llama.cpp server, TGI, hosted APIs).

Standard library only (urllib + threads): requests run with bounded concurrency, per-request
timeouts and retries with exponential backoff on timeouts, 429 and 5xx. The API key is read
from the environment variable named in the config and is never logged or stored.

Fail closed, per chat: a request that still fails after its retries, an empty completion, a
response without log-probs, or an option that is not among the returned top log-probs gives
that chat a `Failed` (the others go on). A missing option is not "nearly impossible": its
log-prob is only bounded above by the smallest returned one, which is no score.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from definemed.errors import UserError
from definemed.llm.base import (EMPTY_OUTPUT, HTTP_ERROR, NO_LOGPROBS, OPTION_NOT_IN_TOP, BackendConfig, Completion,
                                Failed, Message, OptionScores, checked_scores)
from definemed.llm.fingerprint import TOP_LOGPROBS, served_fingerprint

log = logging.getLogger("definemed.llm")
BAD_RESPONSE = "bad_response"


class RequestFailed(Exception):
    """A request that failed for good (after its retries); the message is the short detail."""


class OpenAICompatBackend:
    def __init__(self, cfg: BackendConfig):
        if not cfg.base_url:
            raise UserError("backend kind 'openai' needs base_url, e.g. http://localhost:8000/v1")
        self.cfg = cfg
        self.name = f"openai:{cfg.model}"
        self.url = cfg.base_url.rstrip("/") + "/chat/completions"

    def fingerprint(self) -> str:
        return served_fingerprint(self.cfg.base_url or "", self.cfg.model)

    # -- HTTP ------------------------------------------------------------------------------
    def _post(self, body: dict) -> dict:
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.cfg.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode()
        delay = 1.0
        for attempt in range(self.cfg.max_retries + 1):
            try:
                req = urllib.request.Request(self.url, data=data, headers=headers, method="POST")
                with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as resp:
                    return json.loads(resp.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                retryable = err.code == 429 or err.code >= 500
                if not retryable or attempt == self.cfg.max_retries:
                    raise RequestFailed(f"HTTP {err.code}") from None
            except (urllib.error.URLError, TimeoutError, ConnectionError, json.JSONDecodeError) as err:
                if attempt == self.cfg.max_retries:
                    raise RequestFailed(f"{type(err).__name__}: {err}") from None
            log.warning("request failed (attempt %d), retrying in %.1fs", attempt + 1, delay)
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")

    def _map(self, fn, items):
        """``fn`` per item with bounded concurrency; an item whose request failed for good, or whose
        response lacks the expected fields, becomes a `Failed` instead of stopping the others."""
        def guarded(item):
            try:
                return fn(item)
            except RequestFailed as err:
                log.warning("%s: %s (item counted as failed)", self.url, err)
                return Failed(HTTP_ERROR, str(err))
            except (KeyError, IndexError, TypeError, AttributeError) as err:
                return Failed(BAD_RESPONSE, f"{type(err).__name__}: {err}")

        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            return list(pool.map(guarded, items))

    # -- interface -------------------------------------------------------------------------
    def generate(self, chats: list[list[Message]], max_new_tokens: int = 256, temperature: float = 0.0,
                 seed: int = 0) -> list[Completion]:
        return [r if isinstance(r, Failed) else r["text"] if r["text"].strip() else Failed(EMPTY_OUTPUT)
                for r in self.generate_detailed(chats, max_new_tokens, temperature, seed)]

    def generate_detailed(self, chats: list[list[Message]], max_new_tokens: int = 256, temperature: float = 0.0,
                          seed: int = 0) -> list[dict | Failed]:
        """Per chat: text, new_tokens (the server's usage count, None if it reports none), hit_limit
        (finish_reason "length") and seconds (the request's wall time); or `Failed`."""
        def one(chat):
            body = {"model": self.cfg.model, "messages": chat, "max_tokens": max_new_tokens,
                    "temperature": temperature, "seed": seed}
            t0 = time.perf_counter()
            resp = self._post(body)
            choice = resp["choices"][0]
            return {"text": choice["message"]["content"] or "",
                    "new_tokens": (resp.get("usage") or {}).get("completion_tokens"),
                    "hit_limit": choice.get("finish_reason") == "length",
                    "seconds": time.perf_counter() - t0}

        return self._map(one, chats)

    def score_options(self, chats: list[list[Message]], options: list[str], prefix: str = "") -> list[OptionScores]:
        """Log-probabilities of single-token options from the first generated token's top log-probs.

        With a ``prefix`` the assistant turn is continued (vLLM's ``continue_final_message``).
        """
        def one(chat):
            messages = chat + ([{"role": "assistant", "content": prefix}] if prefix else [])
            body = {"model": self.cfg.model, "messages": messages, "max_tokens": 1, "temperature": 0.0,
                    "logprobs": True, "top_logprobs": TOP_LOGPROBS}
            if prefix:
                body.update(continue_final_message=True, add_generation_prompt=False)
            choice = self._post(body)["choices"][0]
            tokens = (choice.get("logprobs") or {}).get("content") or []
            top = tokens[0].get("top_logprobs") if tokens else None
            if not top:
                return Failed(NO_LOGPROBS)
            table: dict[str, float] = {}
            for t in top:  # " 4" and "4" are the same option; keep the more probable spelling
                key = t["token"].strip()
                table[key] = max(table.get(key, float("-inf")), float(t["logprob"]))
            missing = [opt for opt in options if opt.strip() not in table]
            if missing:
                return Failed(OPTION_NOT_IN_TOP, ",".join(o.strip() for o in missing))
            return checked_scores([table[opt.strip()] for opt in options])

        return self._map(one, chats)

