"""OpenAI-compatible HTTP backend (vLLM, llama.cpp server, TGI, hosted APIs) on httpx + tenacity.

One `httpx.Client` per backend (its connection pool sized to ``concurrency``; httpx clients are
safe to share between the worker threads). Every request has an overall deadline of
``timeout_s``: the response is streamed and the deadline checked after each chunk, and each
socket operation may take at most the time that was left when the request started, so a server
that trickles its answer byte by byte cannot hold a request for longer than about
``2 × timeout_s``. Retries (429, 5xx, connection errors, deadlines; up to ``max_retries``) use
tenacity's jittered exponential backoff; a ``Retry-After`` header (seconds or HTTP-date) is
honoured instead, capped at `RETRY_AFTER_CAP_S`.

`preflight` (``GET {base_url}/models``, run by `definemed.llm.connect_backend` before any work)
turns an unreachable server, a wrong URL, a refused API key or a model the server does not
serve into one `UserError` line. After that, failures are per item: ``Failed(reason, detail)``
with reason ``http_error``, ``connection_error``, ``deadline_exceeded`` or ``bad_response``
(invalid JSON, no ``choices``), counted by the callers.

The API key is read from the environment variable named in the config; it is sent as a header
and never logged, stored in the config or put in a message or repr.

Fail closed, per chat: a request that still fails after its retries, an empty completion, a
response without log-probs, or an option that is not among the returned top log-probs gives
that chat a `Failed` (the others go on). A missing option is not "nearly impossible": its
log-prob is only bounded above by the smallest returned one, which is no score.
"""

from __future__ import annotations

import email.utils
import json
import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timezone

import httpx
import tenacity

from definemed.errors import UserError
from definemed.llm.base import (EMPTY_OUTPUT, HTTP_ERROR, NO_LOGPROBS, OPTION_NOT_IN_TOP, BackendConfig, Completion,
                                Failed, Message, OptionScores, checked_scores, per_chat)
from definemed.llm.fingerprint import TOP_LOGPROBS, served_fingerprint

log = logging.getLogger("definemed.llm")
BAD_RESPONSE = "bad_response"
CONNECTION_ERROR = "connection_error"
DEADLINE = "deadline_exceeded"

BACKOFF_BASE_S = 1.0  # tenacity's wait_random_exponential: uniform(0, base * 2**attempt), capped below
BACKOFF_MAX_S = 30.0
RETRY_AFTER_CAP_S = 120.0  # a server asking for longer waits fails the item instead of stalling the run
RETRY_STATUS = {408, 425, 429}  # and every 5xx but 501/505 (not implemented: permanent)


class RequestFailed(Exception):
    """A request that failed; ``reason``/``detail`` become the item's `Failed`. ``retryable``
    and ``retry_after`` (seconds the server asked for) steer the retry policy."""

    def __init__(self, reason: str, detail: str, retryable: bool = False, retry_after: float | None = None,
                 status: int | None = None):
        super().__init__(detail)
        self.reason, self.detail, self.retryable, self.retry_after, self.status = (
            reason, detail, retryable, retry_after, status)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delay-seconds or an HTTP-date (RFC 9110
    §10.2.3); None when absent or unreadable (then the jittered backoff applies)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _wait(retry_state: tenacity.RetryCallState) -> float:
    err = retry_state.outcome.exception() if retry_state.outcome else None
    if isinstance(err, RequestFailed) and err.retry_after is not None:
        return min(err.retry_after, RETRY_AFTER_CAP_S)
    return tenacity.wait_random_exponential(multiplier=BACKOFF_BASE_S, max=BACKOFF_MAX_S)(retry_state)


def _retry_status(code: int) -> bool:
    return code in RETRY_STATUS or (code >= 500 and code not in (501, 505))


def _retryable(err: BaseException) -> bool:
    return isinstance(err, RequestFailed) and err.retryable


class OpenAICompatBackend:
    def __init__(self, cfg: BackendConfig):
        if not cfg.base_url:
            raise UserError("backend kind 'openai' needs base_url, e.g. http://localhost:8000/v1")
        self.cfg = cfg
        self.name = f"openai:{cfg.model}"
        self.base = cfg.base_url.rstrip("/")
        self.url = self.base + "/chat/completions"
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(cfg.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        limits = httpx.Limits(max_connections=cfg.concurrency, max_keepalive_connections=cfg.concurrency)
        self._client = httpx.Client(headers=headers, limits=limits, timeout=cfg.timeout_s)

    def __repr__(self) -> str:  # never the headers (the API key)
        return f"OpenAICompatBackend({self.base!r}, model={self.cfg.model!r})"

    def close(self) -> None:
        self._client.close()

    def fingerprint(self) -> str:
        return served_fingerprint(self.cfg.base_url or "", self.cfg.model)

    # -- HTTP ------------------------------------------------------------------------------
    def _attempt(self, method: str, url: str, body: dict | None) -> object:
        """One request under one overall deadline; the parsed JSON, or `RequestFailed`."""
        limit = self.cfg.timeout_s
        deadline = time.monotonic() + limit
        late = RequestFailed(DEADLINE, f"no complete answer within timeout_s={limit:g}", retryable=True)
        try:
            with self._client.stream(method, url, json=body, timeout=httpx.Timeout(limit)) as resp:
                if resp.status_code >= 400:
                    code = resp.status_code
                    raise RequestFailed(HTTP_ERROR, f"HTTP {code}", retryable=_retry_status(code),
                                        retry_after=retry_after_seconds(resp.headers.get("retry-after")), status=code)
                chunks = []
                for chunk in resp.iter_bytes():
                    chunks.append(chunk)
                    if time.monotonic() > deadline:  # a trickling body: each read is quick, the whole is not
                        raise late
        except httpx.TimeoutException:
            raise late from None
        except httpx.TransportError as err:  # refused, reset, protocol garbage
            raise RequestFailed(CONNECTION_ERROR, type(err).__name__, retryable=True) from None
        try:
            return json.loads(b"".join(chunks))
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            raise RequestFailed(BAD_RESPONSE, "the reply is not JSON") from None

    def _request(self, method: str, url: str, body: dict | None = None, retry_if=_retryable) -> object:
        def before_sleep(state: tenacity.RetryCallState) -> None:
            err = state.outcome.exception()
            log.warning("%s: %s (attempt %d), retrying in %.1fs", url, getattr(err, "detail", err),
                        state.attempt_number, state.upcoming_sleep)

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(self.cfg.max_retries + 1),
            wait=_wait, retry=tenacity.retry_if_exception(retry_if), reraise=True,
            sleep=lambda s: time.sleep(s), before_sleep=before_sleep)
        return retrying(self._attempt, method, url, body)

    def _post(self, body: dict) -> dict:
        resp = self._request("POST", self.url, body)
        if not isinstance(resp, dict):
            raise RequestFailed(BAD_RESPONSE, "the reply is not a JSON object")
        return resp

    @staticmethod
    def _first_choice(resp: dict) -> dict:
        choices = resp.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
            raise RequestFailed(BAD_RESPONSE, "the reply has no choices")
        return choices[0]

    def _map(self, fn, items):
        """``fn`` per item with bounded concurrency; an item whose request failed for good, or whose
        response lacks the expected fields, becomes a `Failed` instead of stopping the others."""
        def guarded(item):
            try:
                return fn(item)
            except RequestFailed as err:
                log.warning("%s: %s (item counted as failed)", self.url, err.detail)
                return Failed(err.reason, err.detail)
            except (KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
                return Failed(BAD_RESPONSE, f"{type(err).__name__}: {err}")

        with ThreadPoolExecutor(max_workers=self.cfg.concurrency) as pool:
            return list(pool.map(guarded, items))

    # -- preflight -------------------------------------------------------------------------
    def preflight(self) -> None:
        """``GET {base_url}/models`` once, before any work: a problem every item would meet is one
        `UserError` line now, not a failed item per request (and the API key is never shown)."""
        where = f"base_url {self.base}"
        try:
            # a busy server (429, 5xx) is waited for; a refused connection or a timeout is reported at once
            resp = self._request("GET", self.base + "/models",
                                 retry_if=lambda e: _retryable(e) and e.reason == HTTP_ERROR)
        except RequestFailed as err:
            if err.reason == CONNECTION_ERROR:
                raise UserError(f"no server answers at {where} ({err.detail}); is it running, is the URL right?") \
                    from None
            if err.reason == DEADLINE:
                raise UserError(f"the server at {where} did not answer GET /models within "
                                f"timeout_s={self.cfg.timeout_s:g}") from None
            if err.status in (401, 403):
                raise UserError(f"the server at {where} refused the request (HTTP {err.status}): check the API key "
                                f"in the environment variable {self.cfg.api_key_env} (api_key_env)") from None
            if err.status == 404:
                raise UserError(f"{where} is not an OpenAI-compatible API root (GET /models: HTTP 404); "
                                f"it usually ends in /v1") from None
            if err.status in (405, 501):  # a server that does not list models: nothing to check
                log.warning("%s does not list its models (HTTP %s); model name not checked", self.base, err.status)
                return
            if err.reason == BAD_RESPONSE:
                raise UserError(f"{where} is not an OpenAI-compatible API (GET /models did not return JSON)") \
                    from None
            raise UserError(f"the server at {where} answers GET /models with {err.detail}") from None
        data = resp.get("data") if isinstance(resp, dict) else None
        served = [m.get("id") for m in data if isinstance(m, dict)] if isinstance(data, list) else []
        if served and self.cfg.model not in served:
            listed = ", ".join(str(s) for s in served[:10]) + (" ..." if len(served) > 10 else "")
            raise UserError(f"model '{self.cfg.model}' is not served at {where}; it serves: {listed}")

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
            choice = self._first_choice(resp)
            return {"text": (choice.get("message") or {}).get("content") or "",
                    "new_tokens": (resp.get("usage") or {}).get("completion_tokens"),
                    "hit_limit": choice.get("finish_reason") == "length",
                    "seconds": time.perf_counter() - t0}

        return self._map(one, chats)

    def score_options(self, chats: list[list[Message]], options: list[str],
                      prefix: str | list[str] = "") -> list[OptionScores]:
        """Log-probabilities of single-token options from the first generated token's top log-probs.

        With a ``prefix`` the assistant turn is continued (vLLM's ``continue_final_message``); a
        list gives each chat its own prefix.
        """
        prefixes = per_chat(prefix, len(chats))

        def one(job):
            chat, pre = job
            messages = chat + ([{"role": "assistant", "content": pre}] if pre else [])
            body = {"model": self.cfg.model, "messages": messages, "max_tokens": 1, "temperature": 0.0,
                    "logprobs": True, "top_logprobs": TOP_LOGPROBS}
            if pre:
                body.update(continue_final_message=True, add_generation_prompt=False)
            choice = self._first_choice(self._post(body))
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

        return self._map(one, list(zip(chats, prefixes)))
