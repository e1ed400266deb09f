"""Answer generation: the row contract, caching, resume after a torn write, OpenAI-compatible servers."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import ROOT
from definemed.data.schemas import InstructionItem
from definemed.eval import generate as gen
from definemed.eval.config import GenerateEvalConfig

DATA = ROOT / "data/sample/instructions_de/instructions_de.jsonl"
FIELDS = {"id", "model", "model_ref", "prompt", "answer", "reference", "new_tokens", "hit_limit", "seconds", "settings",
          "status", "reason"}


def rows_of(path):
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()]


def test_user_text_joins_instruction_and_input():
    item = InstructionItem(id="a", category="c", instruction="Fasse zusammen.", input="Befund: ...")
    assert gen.user_text(item) == "Fasse zusammen.\n\nBefund: ..."
    assert gen.user_text(item.model_copy(update={"input": ""})) == "Fasse zusammen."


@pytest.fixture()
def counting(monkeypatch):
    """Counts the prompts that reach the model."""
    from definemed.models import chat

    seen, original = [], chat.generate_chat

    def wrapped(model, tok, prompts, settings, batch_size=4):
        seen.extend(p[-1]["content"] for p in prompts)
        return original(model, tok, prompts, settings, batch_size)
    monkeypatch.setattr(chat, "generate_chat", wrapped)
    return seen


def test_rows_cache_and_resume(tiny_model, tmp_path, counting):
    cfg = GenerateEvalConfig(models=[f"tiny={tiny_model}"], data=DATA, output_dir=tmp_path / "ev", limit=5,
                             max_new_tokens=3, batch_size=2)
    metrics = gen.run_generate(cfg)
    path = tmp_path / "ev" / "answers" / "tiny.jsonl"
    rows = rows_of(path)
    assert len(counting) == 5 and metrics["tiny"]["generated_now"] == 5
    from definemed.data.sample import load_instructions

    chosen = {i.id: i for i in load_instructions(DATA)}
    ids = [r["id"] for r in rows]
    assert len(set(chosen[i].category for i in ids)) == 5  # a stratified subset: 5 categories, not lines 1-5
    assert ids == sorted(ids)
    for r in rows:
        assert set(r) == FIELDS
        assert r["model"] == "tiny" and r["model_ref"] == str(tiny_model)
        assert r["settings"] == {"max_new_tokens": 3, "temperature": 0.0, "seed": 0, "chat_template": True}
        assert r["new_tokens"] <= 3 and isinstance(r["hit_limit"], bool) and r["seconds"] > 0
        assert not r["hit_limit"] or r["new_tokens"] == 3  # only an answer cut at the budget hit the limit
    # 3 tokens from a random tiny model: answers are cut at the budget, and the rows say so
    assert any(r["hit_limit"] for r in rows)
    assert rows[0]["reference"] == chosen[rows[0]["id"]].reference
    assert json.loads((tmp_path / "ev" / "metrics.json").read_text())["generate"]["tiny"]["items"] == 5

    counting.clear()  # same model, settings and items: nothing is generated
    assert gen.run_generate(cfg)["tiny"]["generated_now"] == 0 and counting == []
    assert rows_of(path) == rows

    # an interrupted run: two complete rows and a torn third line → only the other three regenerate
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    path.write_text("".join(lines[:2]) + lines[2][:25], encoding="utf-8")
    assert gen.run_generate(cfg)["tiny"]["generated_now"] == 3 and len(counting) == 3
    again = rows_of(path)
    assert [r["id"] for r in again] == [r["id"] for r in rows]
    assert [r["answer"] for r in again] == [r["answer"] for r in rows]  # greedy: the same answers

    counting.clear()  # other settings: all regenerated
    gen.run_generate(cfg.model_copy(update={"max_new_tokens": 2}))
    assert len(counting) == 5 and all(r["settings"]["max_new_tokens"] == 2 for r in rows_of(path))


def test_plain_prompt_without_chat_template(tiny_model, tmp_path):
    cfg = GenerateEvalConfig(models=[str(tiny_model)], data=DATA, output_dir=tmp_path, limit=1, max_new_tokens=2,
                             chat_template=False)
    gen.run_generate(cfg)
    (row,) = rows_of(next((tmp_path / "answers").glob("*.jsonl")))
    assert row["settings"]["chat_template"] is False and row["model"] == tiny_model.name


class FakeServer(BaseHTTPRequestHandler):
    fail_if_contains: str | None = None  # prompts containing this get HTTP 400
    requests = 0

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        FakeServer.requests += 1
        if FakeServer.fail_if_contains and FakeServer.fail_if_contains in body["messages"][-1]["content"]:
            self.send_response(400)
            self.end_headers()
            return
        text = "Antwort: " + body["messages"][-1]["content"][:10]
        data = json.dumps({"choices": [{"message": {"content": text}, "finish_reason": "length"}],
                           "usage": {"completion_tokens": body["max_tokens"]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture()
def fake_server():
    FakeServer.fail_if_contains, FakeServer.requests = None, 0
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()


def test_http_failure_is_a_failed_row_not_a_crash_and_is_retried_next_run(tmp_path, fake_server, monkeypatch):
    from definemed.data.sample import load_instructions

    monkeypatch.setattr("definemed.llm.openai_compat.time.sleep", lambda s: None)
    from definemed.data.subsets import stratified_subset

    chosen = stratified_subset(load_instructions(DATA), 3, key=lambda i: i.category, seed=0)
    FakeServer.fail_if_contains = gen.user_text(chosen[1])[:40]
    cfg = GenerateEvalConfig(models=["m"], data=DATA, output_dir=tmp_path, limit=3, backend="openai",
                             base_url=fake_server, max_new_tokens=7)
    metrics = gen.run_generate(cfg)["m"]
    rows = rows_of(tmp_path / "answers" / "m.jsonl")
    assert [(r["status"], r["reason"]) for r in rows] == [("ok", None), ("failed", "http_error"), ("ok", None)]
    assert rows[1]["answer"] == "" and rows[0]["answer"].startswith("Antwort")
    assert metrics["failed"] == 1 and metrics["failed_reasons"] == {"http_error": 1}
    FakeServer.fail_if_contains = None  # the server recovered: only the failed item is asked again
    assert gen.run_generate(cfg)["m"]["generated_now"] == 1
    assert [r["status"] for r in rows_of(tmp_path / "answers" / "m.jsonl")] == ["ok"] * 3


def test_another_server_url_asks_again(tmp_path, fake_server):
    cfg = GenerateEvalConfig(models=["m"], data=DATA, output_dir=tmp_path, limit=2, backend="openai",
                             base_url=fake_server, max_new_tokens=7)
    assert gen.run_generate(cfg)["m"]["generated_now"] == 2
    assert gen.run_generate(cfg)["m"]["generated_now"] == 0 and FakeServer.requests == 2
    other = cfg.model_copy(update={"base_url": fake_server.replace("/v1", "/other/v1")})
    assert gen.run_generate(other)["m"]["generated_now"] == 2
    assert gen.run_generate(cfg.model_copy(update={"temperature": 0.7}))["m"]["generated_now"] == 2


def test_retrained_model_in_the_same_folder_is_asked_again(tmp_path, bundled_model_path, monkeypatch):
    """New weights of the same size, copied with their old mtime kept (``cp -p``): the old
    size+mtime key hit; the content fingerprint misses."""
    import os
    import shutil

    from definemed.models import random_init_like

    monkeypatch.setenv("DEFINEMED_CACHE", str(tmp_path / "cache"))
    small = dict(num_hidden_layers=1, hidden_size=64, intermediate_size=128, num_attention_heads=4,
                 num_key_value_heads=2, head_dim=16)
    folder, other = tmp_path / "model", tmp_path / "retrained"
    for path, seed in ((folder, 0), (other, 1)):
        random_init_like(bundled_model_path, seed=seed, **small).save_pretrained(path, safe_serialization=True)
        for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
            if (bundled_model_path / name).exists():
                shutil.copy2(bundled_model_path / name, path / name)
    cfg = GenerateEvalConfig(models=[f"m={folder}"], data=DATA, output_dir=tmp_path / "ev", limit=2,
                             max_new_tokens=2)
    assert gen.run_generate(cfg)["m"]["generated_now"] == 2
    assert gen.run_generate(cfg)["m"]["generated_now"] == 0  # unchanged: a cache hit
    weights = folder / "model.safetensors"
    st = weights.stat()
    shutil.copyfile(other / "model.safetensors", weights)
    os.utime(weights, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert weights.stat().st_size == st.st_size and weights.stat().st_mtime_ns == st.st_mtime_ns
    assert gen.run_generate(cfg)["m"]["generated_now"] == 2


def test_openai_compatible_server(tmp_path):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), FakeServer)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        cfg = GenerateEvalConfig(models=["org/served-model"], data=DATA, output_dir=tmp_path, limit=3,
                                 backend="openai", base_url=f"http://127.0.0.1:{httpd.server_address[1]}/v1",
                                 max_new_tokens=7)
        gen.run_generate(cfg)
    finally:
        httpd.shutdown()
    rows = rows_of(tmp_path / "answers" / "org__served-model.jsonl")
    assert [set(r) for r in rows] == [FIELDS] * 3
    assert rows[0]["model_ref"] == "org/served-model" and rows[0]["answer"].startswith("Antwort: ")
    assert all(r["new_tokens"] == 7 and r["hit_limit"] for r in rows)
