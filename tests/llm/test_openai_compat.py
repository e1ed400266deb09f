"""The OpenAI-compatible backend against a real HTTP server on 127.0.0.1 (bounded, local only)."""

import json
import logging
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from definemed.errors import UserError
from definemed.llm.base import BackendConfig, Failed, make_backend


class FakeOpenAI(BaseHTTPRequestHandler):
    """Answers "4" with top log-probs for "4", "3", " 5". A message containing "#400" gets HTTP 400,
    "#nologprobs" a choice without log-probs, "#empty" an empty completion."""

    fail_first = 0  # number of 500 responses before answering
    seen: list = []

    def log_message(self, *args):  # keep test output clean
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeOpenAI.seen.append({"body": body, "auth": self.headers.get("Authorization")})
        if FakeOpenAI.fail_first > 0:
            FakeOpenAI.fail_first -= 1
            self.send_response(500)
            self.end_headers()
            return
        text = " ".join(m["content"] for m in body["messages"])
        if "#400" in text:
            self.send_response(400)
            self.end_headers()
            return
        if "#empty" in text:
            choice = {"message": {"content": None}, "finish_reason": "stop"}
        elif "#nologprobs" in text:
            choice = {"message": {"content": "4"}, "logprobs": None}
        elif body.get("logprobs"):
            top = [{"token": "4", "logprob": -0.2}, {"token": "3", "logprob": -1.9}, {"token": " 5", "logprob": -3.0}]
            choice = {"message": {"content": "4"}, "logprobs": {"content": [{"token": "4", "top_logprobs": top}]}}
        else:
            content = f"Antwort auf: {body['messages'][-1]['content'][:20]}"
            if "name=\"antwort_a\"" in text:  # a judge prompt (fenced answer blocks): answer with a verdict
                fence = re.search(r"DATA-[0-9a-f]{16}", text).group(0)  # the verdict slot names it
                content = f'{{"kennung": "{fence}", "begruendung": "kurz", "urteil": "A"}}'
            choice = {"message": {"content": content}}
        data = json.dumps({"choices": [choice]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def server():
    FakeOpenAI.seen, FakeOpenAI.fail_first = [], 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_generate_with_concurrency_and_api_key_from_env(server, monkeypatch, caplog):
    monkeypatch.setenv("MY_KEY", "sk-secret-123")
    backend = make_backend(BackendConfig(kind="openai", model="m", base_url=server, api_key_env="MY_KEY",
                                         concurrency=4))
    chats = [[{"role": "user", "content": f"Frage {i}"}] for i in range(6)]
    with caplog.at_level(logging.DEBUG):
        out = backend.generate(chats, max_new_tokens=8)
    assert out == [f"Antwort auf: Frage {i}" for i in range(6)]  # order kept despite concurrency
    assert all(s["auth"] == "Bearer sk-secret-123" for s in FakeOpenAI.seen)
    assert "sk-secret-123" not in caplog.text


def test_retries_server_errors_with_backoff(server, monkeypatch):
    monkeypatch.setattr("definemed.llm.openai_compat.time.sleep", lambda s: None)
    FakeOpenAI.fail_first = 2
    backend = make_backend(BackendConfig(kind="openai", model="m", base_url=server, max_retries=3))
    assert backend.generate([[{"role": "user", "content": "Hallo"}]])[0].startswith("Antwort")
    assert len(FakeOpenAI.seen) == 3


def test_gives_up_after_max_retries_with_a_failed_item(server, monkeypatch):
    monkeypatch.setattr("definemed.llm.openai_compat.time.sleep", lambda s: None)
    FakeOpenAI.fail_first = 10
    backend = make_backend(BackendConfig(kind="openai", model="m", base_url=server, max_retries=1))
    (out,) = backend.generate([[{"role": "user", "content": "Hallo"}]])
    assert out == Failed("http_error", "HTTP 500") and len(FakeOpenAI.seen) == 2


def chat(text):
    return [{"role": "user", "content": text}]


def test_score_options_reads_top_logprobs(server):
    backend = make_backend(BackendConfig(kind="openai", model="m", base_url=server))
    (scores,) = backend.score_options([chat("Bewerte")], ["3", "4", "5"])
    assert scores == [-1.9, -0.2, -3.0]
    assert FakeOpenAI.seen[0]["body"]["max_tokens"] == 1


def test_option_missing_from_top_logprobs_fails_the_item(server):
    """"0" is not in the top-k: its log-prob is unknown (only bounded above), so there is no score."""
    backend = make_backend(BackendConfig(kind="openai", model="m", base_url=server))
    (scores,) = backend.score_options([chat("Bewerte")], ["3", "4", "5", "0"])
    assert scores == Failed("option_not_in_top_logprobs", "0")


def test_per_item_failures_do_not_stop_the_others(server):
    backend = make_backend(BackendConfig(kind="openai", model="m", base_url=server, max_retries=0))
    chats = [chat("a"), chat("b #400"), chat("c #nologprobs"), chat("d")]
    assert backend.score_options(chats, ["3", "4"]) == [
        [-1.9, -0.2], Failed("http_error", "HTTP 400"), Failed("no_logprobs"), [-1.9, -0.2]]
    out = backend.generate([chat("a"), chat("b #400"), chat("c #empty")])
    assert out == ["Antwort auf: a", Failed("http_error", "HTTP 400"), Failed("empty_output")]


def test_fingerprint_names_server_and_model(server):
    def fp(url, model):
        return make_backend(BackendConfig(kind="openai", model=model, base_url=url)).fingerprint()

    assert fp(server, "m") == fp(server + "/", "m")
    assert len({fp(server, "m"), fp("http://127.0.0.1:9/v1", "m"), fp(server, "other")}) == 3


def test_missing_base_url_is_a_user_error():
    with pytest.raises(UserError, match="base_url"):
        make_backend(BackendConfig(kind="openai", model="m"))


# -- end to end: judge and annotator over HTTP fail closed -----------------------------------------
def test_judge_over_a_server_without_logprobs_fails_instead_of_saying_a(server):
    """Old behaviour: every option missing -> uniform softmax -> verdict "A" with status ok."""
    from definemed.eval.judge import Comparison, LLMJudge

    judge = LLMJudge(make_backend(BackendConfig(kind="openai", model="m", base_url=server)), "loglik")
    (v,) = judge.judge([Comparison("Frage #nologprobs", "Antwort eins", "Antwort zwei")])
    assert v["status"] == "failed" and v["reason"] == "no_logprobs" and v["verdict"] is None


def test_annotator_over_a_server_with_partial_top_k_fails_instead_of_scoring(server, tmp_path):
    """The server returns only "4", "3", " 5": the digits 0, 1, 2 have no log-prob, so no score
    (old behaviour: -1e4 for them and an expectation over the rest, status ok)."""
    from definemed.corpus.annotator import Annotator, AnnotatorConfig

    cfg = AnnotatorConfig(mode="loglik", backend=BackendConfig(kind="openai", model="m", base_url=server))
    ann = Annotator(cfg, tmp_path / "c.sqlite")
    (r,) = ann.annotate(["Die Patientin erhält eine Therapie."])
    assert r["status"] == "failed" and r["reason"] == "option_not_in_top_logprobs" and "medical" not in r
    assert ann.stats["failed:option_not_in_top_logprobs"] == 1


def test_judge_cache_misses_on_another_server_with_the_same_model_name(server, tmp_path):
    """Two servers serving "m" are two models: a verdict cached from one is not the other's
    (old key: backend name "openai:m" only)."""
    from definemed.eval.judge import Comparison, LLMJudge

    other = ThreadingHTTPServer(("127.0.0.1", 0), FakeOpenAI)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    try:
        comp = [Comparison("Frage", "Antwort eins", "Antwort zwei")]
        for url in (server, f"http://127.0.0.1:{other.server_address[1]}/v1", server):
            backend = make_backend(BackendConfig(kind="openai", model="m", base_url=url))
            LLMJudge(backend, "generate", cache_path=tmp_path / "c.sqlite").judge(comp)
    finally:
        other.shutdown()
    # first server, then the other (a miss), then the first again (a hit): two requests in all
    assert len([s for s in FakeOpenAI.seen if not s["body"].get("logprobs")]) == 2
