"""The study table says exactly what was measured: chance from the items' own option counts, n
beside every rate, the IF row's denominator, how many answers stopped on their own, and the
note that the demo pre-trains the instruct model itself. Inputs come from the real writers."""

import json

from definemed.data.io import write_jsonl
from definemed.eval.study import study_notes, study_rows, study_table


def _mcq_file(path):
    rows = [{"id": f"q{i}", "subject": "Kardiologie" if i % 2 else "Pharmakologie",
             "question": f"Welche Aussage zu Befund {i} trifft zu?",
             "choices": [f"Antwort {c} zu {i}" for c in "ABCDE"[: 5 if i < 4 else 4]], "answer": 0}
            for i in range(10)]
    write_jsonl(path, rows)
    return rows


def _answers(folder, label, n_hit):
    from definemed.data.sample import load_instructions

    items = [i for i in load_instructions() if i.constraints][:4]
    rows = [{"id": it.id, "model": label, "model_ref": label, "prompt": it.instruction,
             "answer": "Bitte wenden Sie sich an Ihre Hausärztin. Trinken Sie ausreichend Wasser.",
             "reference": it.reference, "new_tokens": 20, "hit_limit": k < n_hit, "seconds": 0.1,
             "settings": {}} for k, it in enumerate(items)]
    write_jsonl(folder / f"{label}.jsonl", rows)
    return folder / f"{label}.jsonl"


def test_study_rows_state_chance_n_denominators_and_stopping(tiny_model, tmp_path):
    from definemed.eval.config import MCQEvalConfig
    from definemed.eval.failures_run import FailuresConfig, run_failures
    from definemed.eval.mcq import run_mcq

    rows = _mcq_file(tmp_path / "mcq.jsonl")
    mcq = run_mcq(MCQEvalConfig(models=[f"base={tiny_model}", f"cpt={tiny_model}"], data=tmp_path / "mcq.jsonl",
                                output_dir=tmp_path / "ev", n_boot=100))
    expected_chance = sum(1 / len(r["choices"]) for r in rows) / len(rows)  # 4×1/5 + 6×1/4 → 0.23
    assert abs(mcq["chance"] - expected_chance) < 1e-9 and mcq["options"] == {4: 6, 5: 4}
    answers = tmp_path / "answers"
    answers.mkdir()
    files = [_answers(answers, "base", n_hit=3), _answers(answers, "cpt", n_hit=1)]
    failures = run_failures(FailuresConfig(answers=files, output_dir=tmp_path / "ev"))
    failures = json.loads((tmp_path / "ev" / "failures.json").read_text())
    table = study_rows(None, {"mcq": mcq}, failures, None, ["base", "cpt"])
    by = {r["measure"]: r for r in table}

    mcq_row = next(r for r in table if r["measure"].startswith("MCQ acc"))
    assert "10 items" in mcq_row["measure"] and "chance 0.23" in mcq_row["measure"]
    assert "4/5 options" in mcq_row["measure"]
    assert mcq_row["base"].endswith("(n=10)")
    if_row = next(r for r in table if r["measure"].startswith("IF items"))
    assert "4 instructions with constraints of 4 answered" in if_row["measure"] and if_row["cpt"].endswith("(n=4)")
    stopped = by["answers that stopped on their own (not at the token limit)"]
    assert stopped["base"].startswith("25% ") and stopped["cpt"].startswith("75% ")  # 1 of 4 and 3 of 4
    assert by["words per answer that stopped on its own"]["base"].endswith("(n=1)")
    for row in table:  # every cell that holds a rate says its n
        for label in ("base", "cpt"):
            if "[" in row.get(label, ""):
                assert "(n=" in row[label], row


def test_notes_say_when_the_instruct_model_itself_was_pretrained():
    assert study_notes(False) == []
    (note,) = study_notes(True)
    assert "instruct model itself" in note and "configs/paper/" in note
    from rich.console import Console

    console = Console(record=True, width=160)
    console.print(study_table([], ["base"], [note]))
    assert "instruct model itself" in console.export_text()


def test_demo_detects_cpt_of_the_instruct_model(tmp_path):
    from definemed.demo import DemoConfig, _cpt_of_instruct

    assert _cpt_of_instruct(DemoConfig(output_dir=tmp_path))  # demo-train.yaml trains smollm2-135m-instruct
    assert not _cpt_of_instruct(DemoConfig(output_dir=tmp_path, train_config=None))
