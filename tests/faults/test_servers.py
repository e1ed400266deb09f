"""Faults of an OpenAI-compatible server (issue #12): each failure mode against the one fake server.

Before the preflight a problem every request would meet (no server, wrong URL, refused key,
unknown model) is one `UserError` line; after it, failures are per item, counted by reason.
"""

import email.utils
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from definemed.errors import UserError
from definemed.llm.base import BackendConfig, Failed, make_backend
from tests.faults._fake_server import FakeServer, closed_port

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "data/sample/instructions_de/instructions_de.jsonl"
SECRET = "sk-very-secret-4711"


def chat(text="Hallo"):
    return [{"role": "user", "content": text}]


def connect_backend(c):
    from definemed.llm import connect_backend  # imported here: the baseline has none (each test fails alone)

    return connect_backend(c)


def cfg(url, **kw):
    return BackendConfig(kind="openai", model="m", base_url=url, **kw)


@pytest.fixture()
def no_backoff(monkeypatch):
    """Tenacity's jittered backoff scaled down to milliseconds (Retry-After still applies)."""
    monkeypatch.setattr("definemed.llm.openai_compat.BACKOFF_BASE_S", 0.001, raising=False)


# -- before any work: one line ------------------------------------------------------------------
def test_closed_port_through_the_cli_is_one_line_exit_2(tmp_path):
    import definemed

    url = f"http://127.0.0.1:{closed_port()}/v1"
    src = Path(definemed.__file__).resolve().parents[1]  # the package under test, in the child too
    proc = subprocess.run([sys.executable, "-m", "definemed.cli", "eval", "generate", "--base-url", url, "-m", "m",
                           "--data", str(DATA), "--out", str(tmp_path / "ev"), "--set", "limit=2"],
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(src), "COLUMNS": "80"})
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2, proc.stderr
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert "base_url" in lines[0] and url in lines[0]


def test_closed_port_stops_the_judge_before_any_work(tmp_path):
    """The judge (pairwise) builds its backend with the preflight too."""
    from definemed.eval.pairwise import PairwiseConfig
    from definemed.eval.pairwise_run import run_pairwise

    answers = []
    for label in ("a", "b"):
        path = tmp_path / f"{label}.jsonl"
        path.write_text('{"id": "1", "model": "%s", "prompt": "Frage", "answer": "Antwort %s", "reference": "", '
                        '"status": "ok"}\n' % (label, label), encoding="utf-8")
        answers.append(path)
    url = f"http://127.0.0.1:{closed_port()}/v1"
    pcfg = PairwiseConfig(answers=answers, judge=cfg(url), output_dir=tmp_path / "ev")
    with pytest.raises(UserError, match="base_url"):
        run_pairwise(pcfg)
    assert not (tmp_path / "ev").exists()  # stopped before the run directory was started


def test_401_names_the_key_variable_never_the_key(monkeypatch):
    monkeypatch.setenv("MY_KEY", SECRET)
    with FakeServer(get="401") as srv:
        with pytest.raises(UserError) as err:
            connect_backend(cfg(srv.url, api_key_env="MY_KEY"))
        assert srv.gets[0].get("Authorization") == f"Bearer {SECRET}"  # the key was sent...
    assert "401" in str(err.value) and "MY_KEY" in str(err.value)
    assert SECRET not in str(err.value)  # ...but is never shown


def test_unknown_model_is_named_with_what_the_server_serves():
    with FakeServer(models=["llama-3-8b", "qwen2-7b"]) as srv:
        with pytest.raises(UserError) as err:
            connect_backend(cfg(srv.url))
        assert srv.posts == []  # no work was started
    assert "'m'" in str(err.value) and "llama-3-8b" in str(err.value)


def test_wrong_url_without_v1_is_one_line():
    with FakeServer() as srv:
        with pytest.raises(UserError, match="/v1"):
            connect_backend(cfg(srv.url.removesuffix("/v1")))


def test_a_server_that_lists_no_models_is_not_refused():
    with FakeServer(models=None) as srv:
        backend = connect_backend(cfg(srv.url))
        assert backend.generate([chat()]) == ["Antwort: Hallo"]


# -- after the preflight: per item, counted -----------------------------------------------------
def test_500_then_success_is_retried(no_backoff):
    with FakeServer(script=["500"]) as srv:
        assert make_backend(cfg(srv.url)).generate([chat()]) == ["Antwort: Hallo"]
        assert len(srv.posts) == 2


def test_500_forever_fails_the_items_and_is_counted(tmp_path, no_backoff):
    """Guards behaviour that already held (per-item failure, counted), now through the preflighted path."""
    from definemed.eval.config import GenerateEvalConfig
    from definemed.eval.generate import run_generate

    with FakeServer(post="500") as srv:
        gcfg = GenerateEvalConfig(models=["m"], data=DATA, output_dir=tmp_path, limit=2, backend="openai",
                                  base_url=srv.url, max_new_tokens=4)
        metrics = run_generate(gcfg)["m"]
    assert metrics["failed"] == 2 and metrics["failed_reasons"] == {"http_error": 2}


def test_429_waits_as_long_as_retry_after_says(no_backoff):
    """The server's request times, relative to each other: the retry came no earlier than asked
    (the backoff alone would have waited milliseconds here)."""
    with FakeServer(script=["429"], retry_after="2") as srv:
        assert make_backend(cfg(srv.url)).generate([chat()]) == ["Antwort: Hallo"]
        (t0, _), (t1, _) = srv.posts
    assert t1 - t0 >= 1.9


def test_retry_after_http_date_and_cap():
    from definemed.llm import openai_compat as oc

    now = time.time()
    assert oc.retry_after_seconds(email.utils.formatdate(now + 30, usegmt=True), now=now) == pytest.approx(30, abs=1)
    assert oc.retry_after_seconds("7") == 7.0
    assert oc.retry_after_seconds("soon") is None
    state = type("S", (), {"outcome": type("O", (), {"exception": lambda self: oc.RequestFailed(
        "http_error", "HTTP 429", retryable=True, retry_after=86400.0)})(), "attempt_number": 1})()
    assert oc._wait(state) == oc.RETRY_AFTER_CAP_S  # a day-long Retry-After does not stall the run


def test_invalid_json_fails_the_item_as_a_bad_response(no_backoff):
    with FakeServer(post="invalid_json") as srv:
        (out,) = make_backend(cfg(srv.url)).generate([chat()])
    assert out == Failed("bad_response", "the reply is not JSON")


def test_reply_without_choices_fails_the_item_readably(no_backoff):
    with FakeServer(post="no_choices") as srv:
        backend = make_backend(cfg(srv.url))
        assert backend.generate([chat()]) == [Failed("bad_response", "the reply has no choices")]
        assert backend.score_options([chat()], ["4"]) == [Failed("bad_response", "the reply has no choices")]


def test_trickling_server_fails_the_item_on_the_overall_deadline():
    """One byte per 0.2 s: each read is quick, the whole answer is not; the item fails for the deadline."""
    with FakeServer(post="trickle", trickle_s=0.2) as srv:
        (out,) = make_backend(cfg(srv.url, timeout_s=1.0, max_retries=0)).generate([chat()])
    assert isinstance(out, Failed) and out.reason == "deadline_exceeded"


def test_api_key_is_in_no_repr_or_failure(monkeypatch, no_backoff):
    monkeypatch.setenv("MY_KEY", SECRET)
    with FakeServer(post="401") as srv:
        backend = make_backend(cfg(srv.url, api_key_env="MY_KEY", max_retries=0))
        (out,) = backend.generate([chat()])
    assert out == Failed("http_error", "HTTP 401")
    assert SECRET not in repr(backend) and SECRET not in repr(out) and SECRET not in repr(backend.cfg)


def test_score_options_takes_one_prefix_per_chat():
    with FakeServer() as srv:
        backend = make_backend(cfg(srv.url))
        out = backend.score_options([chat("a"), chat("b")], ["3", "4"], prefix=["Urteil:", ""])
        bodies = sorted((b for _, b in srv.posts), key=lambda b: b["messages"][0]["content"])
    assert out == [[-1.9, -0.2], [-1.9, -0.2]]
    assert bodies[0]["messages"][-1] == {"role": "assistant", "content": "Urteil:"}
    assert bodies[0]["continue_final_message"] is True
    assert bodies[1]["messages"] == chat("b") and "continue_final_message" not in bodies[1]
