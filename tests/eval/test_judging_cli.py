"""`definemed eval pairwise` and `definemed eval failures` as real subprocesses, and the real
bundled model as judge (slow)."""

import json

import pytest
import yaml

from definemed.data import sample

from conftest import run_cli
from .judge_fakes import write_answers


@pytest.fixture(scope="module")
def answer_files(tmp_path_factory):
    """Three 'models' on six real instruction items: the references, a short generic answer, and
    the reference followed by English text and leaked chat markup."""
    items = sample.load_instructions()[:6]
    run = tmp_path_factory.mktemp("evalrun")
    prompts = {it.id: it.instruction for it in items}
    refs = {it.id: it.reference for it in items}
    paths = [
        write_answers(run / "answers" / "referenz.jsonl", "referenz", refs, refs, prompts),
        write_answers(run / "answers" / "kurz.jsonl", "kurz",
                      {i: "Das kommt darauf an. Fragen Sie im Zweifel Ihre Ärztin." for i in refs}, refs, prompts,
                      hit_limit={items[0].id}),
        write_answers(run / "answers" / "gemischt.jsonl", "gemischt",
                      {i: r + "\nIn summary, please consult your doctor for further advice.<|im_end|>"
                       for i, r in refs.items()}, refs, prompts),
    ]
    return run, paths


def test_failures_cli(answer_files):
    run, paths = answer_files
    res = run_cli("eval", "failures", *[a for p in paths for a in ("--answers", p)], "--baseline", "referenz",
                  "--out", run)
    assert res.returncode == 0, res.stderr
    report = json.loads((run / "failures.json").read_text())["models"]
    assert report["gemischt"]["language_mixing"]["answers_with_foreign_sentence"]["mean"] == 1.0
    assert report["referenz"]["language_mixing"]["answers_with_foreign_sentence"]["mean"] == 0.0
    assert report["gemischt"]["template_leakage"]["answers_with_leakage"]["mean"] == 1.0
    assert report["kurz"]["verbosity"]["ratio_to_baseline"]["mean"] < 0.5
    assert report["kurz"]["verbosity"]["hit_token_limit"]["mean"] == pytest.approx(1 / 6)
    assert report["referenz"]["instruction_following"]["item_loose"]["mean"] == 1.0
    assert (run / "failures_examples.jsonl").read_text().strip()
    assert "failures" in yaml.safe_load((run / "config.yaml").read_text())
    assert "kurz" in json.loads((run / "metrics.json").read_text())["failures"]
    assert "kurz:" in res.stdout


def test_pairwise_cli_embedding_judge_three_models(answer_files):
    run, paths = answer_files
    res = run_cli("eval", "pairwise", *[a for p in paths for a in ("--answers", p)], "--embedding-judge",
                  "--out", run)
    assert res.returncode == 0, res.stderr
    out = json.loads((run / "pairwise.json").read_text())
    judge = out["judges"]["embedding:multilingual-e5-small"]
    first = judge["pairs"][0]
    assert (first["a"], first["b"], first["wins"], first["n"]) == ("referenz", "kurz", 6, 6)
    assert judge["win_rate_matrix"]["kurz"]["referenz"] == 0.0
    assert [r["model"] for r in judge["bradley_terry"]][-1] == "kurz"
    assert len((run / "pairwise_verdicts.jsonl").read_text().splitlines()) == 3 * 6
    manifest = json.loads((run / "manifest.json").read_text())
    assert manifest["status"] == "finished" and "pairwise.answers_0" in manifest["inputs"]


@pytest.mark.parametrize("args,message", [
    (["--out", "X"], "no judge"),
    (["--judge-base-url", "http://localhost:9/v1", "--out", "X"], "--judge-served-model"),
    (["--judge-model", "m", "--judge-base-url", "http://x/v1", "--judge-served-model", "s", "--out", "X"], "not both"),
    (["--embedding-judge", "--mode", "vote", "--out", "X"], "--mode"),
])
def test_pairwise_cli_user_errors(answer_files, tmp_path, args, message):
    _, paths = answer_files
    res = run_cli("eval", "pairwise", "--answers", paths[0], "--answers", paths[1],
                  *[str(tmp_path / a) if a == "X" else a for a in args])
    assert res.returncode == 2 and message in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1


def test_failures_cli_user_errors(answer_files, tmp_path):
    _, paths = answer_files
    res = run_cli("eval", "failures", "--answers", paths[0], "--baseline", "nope", "--out", tmp_path)
    assert res.returncode == 2 and "--baseline" in res.stderr and "Traceback" not in res.stderr
    res = run_cli("eval", "failures", "--answers", tmp_path / "missing.jsonl", "--out", tmp_path)
    assert res.returncode == 2 and "missing.jsonl" in res.stderr


@pytest.mark.slow
def test_bundled_model_as_judge_loglik_cli(answer_files, tmp_path):
    """The real 135M model judges references vs short answers (3 items, both orders)."""
    _, paths = answer_files
    res = run_cli("eval", "pairwise", "--answers", paths[0], "--answers", paths[1], "--judge-model",
                  "smollm2-135m-instruct", "--mode", "loglik", "--reference-guided", "--max-items", "3",
                  "--out", tmp_path)
    assert res.returncode == 0, res.stderr
    out = json.loads((tmp_path / "pairwise.json").read_text())
    for name, judge in out["judges"].items():
        p = judge["pairs"][0]
        assert p["n"] + p["failed"] == 3 and p["wins"] + p["ties"] + p["losses"] == p["n"]
        print(f"{name}: position consistency {p['position_consistency']['mean']}, win-rate {p['win_rate']['mean']}")
    assert len(out["agreement"]) == 1


@pytest.mark.slow
def test_bundled_model_as_judge_generate(bundled):
    from definemed.eval.judge import LLMJudge
    from definemed.eval.pairwise import judge_llm, summarise_pair
    from definemed.llm.base import BackendConfig
    from definemed.llm.local import LocalBackend

    model, tok = bundled
    items = [{"id": it.id, "prompt": it.instruction, "reference": it.reference, "x": it.reference,
              "y": "Das weiß ich nicht."} for it in sample.load_instructions()[:2]]
    judge = LLMJudge(LocalBackend(BackendConfig(), model, tok), "generate", max_new_tokens=48)
    s = summarise_pair(judge_llm(judge, items), items, n_boot=200)
    assert s["n"] + s["failed"] == 2
    print(f"generate: failed {s['failed']}, retried {judge.stats['retried']}, "
          f"consistency {s['position_consistency']}")
