"""MCQ scoring: layouts, known answers on a tiny real model, run directory and cache, CLI errors."""

import json

import pytest
import torch

from conftest import ROOT, run_cli
from definemed.errors import UserError
from definemed.eval import mcq_data
from definemed.eval.config import MCQEvalConfig
from definemed.eval.mcq import run_mcq, score_items

SAMPLE = ROOT / "data/sample/mcq_de/mcq_de.jsonl"


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


# --- layouts -------------------------------------------------------------------------------------
def test_public_layouts_parse_to_the_same_item(tmp_path):
    q, opts = "Welches Organ produziert Insulin?", ["Leber", "Pankreas", "Milz", "Niere"]
    rows = [
        {"id": "p1", "subject": "endo", "question": q, "choices": opts, "answer": 1},  # project
        {"question": q, "choices": opts, "answer": 1, "subject": "endo"},  # MMLU
        {"question": q, "options": dict(zip("ABCD", opts)), "answer_idx": "B", "answer": "Pankreas"},  # MedQA
        {"question": q, "options": opts, "answer": "Pankreas"},  # MedQA-like, answer text
        {"question": q, "options": opts, "answer": "b"},  # letter, lower case
        {"question": q, "choices": opts, "answer": "1"},  # index as string
    ]
    items = mcq_data.load_items(write_jsonl(tmp_path / "m.jsonl", rows))
    assert [it.answer for it in items] == [1] * 6
    assert all(it.choices == tuple(opts) for it in items)
    assert items[0].id == "p1" and items[1].id == "2" and items[1].subject == "endo" and items[2].subject == "all"
    assert len(mcq_data.load_items(SAMPLE)) == 160


@pytest.mark.parametrize("row, message", [
    ({"question": "Was ist das?", "answers": ["a", "b"], "label": 0}, "unknown MCQ layout"),
    ({"prompt": "Was ist das?", "choices": ["a", "b"], "answer": 0}, "unknown MCQ layout"),
    ({"question": "Was ist das?", "choices": ["a", "b"], "answer": 2}, "out of range"),
    ({"question": "Was ist das?", "choices": ["a", "b"], "answer": "Z"}, "neither an index"),
    ({"question": "Was ist das?", "choices": ["a", "a"], "answer": 0}, "duplicate options"),
    ({"question": "Was ist das?", "choices": ["a"], "answer": 0}, "2 to"),
])
def test_bad_rows_are_one_line_user_errors(tmp_path, row, message):
    path = write_jsonl(tmp_path / "bad.jsonl", [row])
    with pytest.raises(UserError, match=message) as err:
        mcq_data.load_items(path)
    assert "\n" not in str(err.value) and f"{path}:1" in str(err.value)


def test_prompt_and_first_n_shots():
    items = mcq_data.load_items(SAMPLE)[:4]
    assert mcq_data.prompt(items[0]).endswith("\nA. CHA₂DS₂-VASc-Score\nB. HAS-BLED-Score\nC. Wells-Score\n"
                                              "D. CURB-65-Score\nAntwort:")
    assert [s.id for s in mcq_data.shots_for(items[0], items, 2)] == [items[1].id, items[2].id]
    assert [s.id for s in mcq_data.shots_for(items[2], items, 2)] == [items[0].id, items[1].id]
    ctx = mcq_data.context(items[2], mcq_data.shots_for(items[2], items, 1), "letter")
    assert ctx == mcq_data.prompt(items[0]) + " B\n\n" + mcq_data.prompt(items[2])
    with pytest.raises(UserError, match="only 3 other"):
        mcq_data.shots_for(items[0], items, 4)


# --- scoring on a tiny real model ---------------------------------------------------------------
def independent_logprobs(model, tok, context, options):
    """Each option scored alone: one forward over context + option, summed log-probabilities."""
    out = []
    ctx = tok(context).input_ids
    for opt in options:
        cont = tok(context + " " + opt).input_ids[len(ctx):]
        with torch.no_grad():
            logp = torch.log_softmax(model(input_ids=torch.tensor([ctx + cont])).logits[0].float(), -1)
        out.append(sum(logp[len(ctx) - 1 + m, t].item() for m, t in enumerate(cont)))
    return out


LONG = {"id": "long", "subject": "x", "question": "Welche Aussage zur Hypertonie trifft zu?",
        "choices": ["Ja", "Eine dauerhaft erhöhte Blutdrucklage schädigt langfristig Gefäße und Organe", "Nein"],
        "answer": 1}


@pytest.mark.parametrize("share_prefix", [True, False])
@pytest.mark.parametrize("shots, target", [(0, "text"), (1, "letter")])
def test_chosen_option_is_argmax_of_independent_logprobs(tiny_loaded, tmp_path, share_prefix, shots, target):
    model, tok = tiny_loaded
    items = mcq_data.load_items(SAMPLE)[:3] + mcq_data.load_items(write_jsonl(tmp_path / "l.jsonl", [LONG]))
    cfg = MCQEvalConfig(data=SAMPLE, output_dir=tmp_path, shots=shots, target=target, share_prefix=share_prefix,
                        batch_size=3)
    rows = score_items(model, tok, cfg, items, items)
    for it, row in zip(items, rows):
        ctx = mcq_data.context(it, mcq_data.shots_for(it, items, shots), target)
        ref = independent_logprobs(model, tok, ctx, mcq_data.targets(it, target))
        assert row["logprobs"] == pytest.approx(ref, abs=2e-4)
        assert row["chosen"] == max(range(len(ref)), key=lambda i: ref[i])
        lengths = [len(t) for t in mcq_data.targets(it, target)]
        assert row["chosen_norm"] == max(range(len(ref)), key=lambda i: ref[i] / lengths[i])
        assert row["correct"] == (row["chosen"] == it.answer)


def test_acc_norm_differs_from_acc_when_lengths_differ(tiny_loaded, tmp_path):
    """A random model spends ~11 nats per token: the one-token 'Ja' wins on the sum, the long option
    (the gold one) on the per-character score."""
    model, tok = tiny_loaded
    items = mcq_data.load_items(write_jsonl(tmp_path / "l.jsonl", [LONG]))
    row = score_items(model, tok, MCQEvalConfig(data=SAMPLE, output_dir=tmp_path), items, items)[0]
    assert row["chosen"] != row["chosen_norm"]
    assert (row["correct"], row["correct_norm"]) == (False, True)
    letters = score_items(model, tok, MCQEvalConfig(data=SAMPLE, output_dir=tmp_path, target="letter"), items, items)[0]
    assert letters["chosen"] == letters["chosen_norm"]  # equal lengths: acc_norm is acc


def test_run_dir_metrics_and_cache(tiny_model, tmp_path, monkeypatch):
    out = tmp_path / "eval"
    cfg = MCQEvalConfig(models=[f"tiny={tiny_model}"], data=SAMPLE, output_dir=out, limit=5, chat_template=True,
                        system_prompt="Antworte auf Deutsch.")
    res = run_mcq(cfg)
    m = res["models"]["tiny"]
    assert m["acc"]["n"] == 5 and 0 <= m["acc"]["ci_low"] <= m["acc"]["mean"] <= m["acc"]["ci_high"] <= 1
    assert len(m["per_subject"]) == 5  # a stratified subset: one item of each of five subjects
    rows = [json.loads(x) for x in (out / "mcq" / "tiny.jsonl").read_text().splitlines()]
    ids = [r["id"] for r in rows]
    assert len(ids) == 5 and ids == sorted(ids) and ids != ["mcq-001", "mcq-002", "mcq-003", "mcq-004", "mcq-005"]
    assert m["acc"]["mean"] == sum(r["correct"] for r in rows) / 5
    assert json.loads((out / "metrics.json").read_text())["mcq"]["tiny"]["acc"] == m["acc"]
    assert json.loads((out / "manifest.json").read_text())["status"] == "finished"

    def no_loading(*a, **k):
        raise AssertionError("model loaded although cached")
    monkeypatch.setattr("definemed.models.load_causal_lm", no_loading)
    assert run_mcq(cfg)["models"]["tiny"]["acc"] == m["acc"]
    with pytest.raises(AssertionError, match="cached"):  # other settings: scored again
        run_mcq(cfg.model_copy(update={"shots": 1}))


# --- CLI ------------------------------------------------------------------------------------------
def test_cli_errors_are_one_line(tmp_path):
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"frage": "Was?", "antworten": ["a", "b"]}])
    for args, message in [
        (["--data", bad], "unknown MCQ layout"),
        (["--data", tmp_path / "missing.jsonl"], "MCQ data not found"),
        (["--data", SAMPLE, "--set", "targett=letter"], "field 'targett': unknown field"),
        (["--data", SAMPLE, "--set", "target=word"], "field 'target'"),
    ]:
        res = run_cli("eval", "mcq", *args, "--out", tmp_path / "run", timeout=120)
        assert res.returncode == 2, res.stderr
        lines = [x for x in res.stderr.splitlines() if x.strip()]
        assert len(lines) == 1 and message in lines[0], res.stderr
