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
        # a local model always has the log-probs of " A", " B", " C": every verdict came from it
        assert p["n"] == 3 and p["failed"] == 0 and judge["calls"]["ok"] == 6 and judge["failed_calls_by_reason"] == {}
        print(f"{name}: position consistency {p['position_consistency']['mean']}, win-rate {p['win_rate']['mean']}")
    verdicts = [json.loads(x) for x in (tmp_path / "pairwise_verdicts.jsonl").read_text().splitlines()]
    for v in verdicts:  # each order's verdict is the argmax of the model's own probabilities
        for order in ("order_xy", "order_yx"):
            probs = v[order]["probs"]
            assert abs(sum(probs) - 1) < 1e-3 and v[order]["verdict"] == ("A", "B", "tie")[probs.index(max(probs))]
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
    out = judge_llm(judge, items)
    s = summarise_pair(out, items, n_boot=200)
    for o in out:  # a verdict is one the model wrote, or a failure that names its reason
        for v in (o["order_xy"], o["order_yx"]):
            assert (v["status"], v["verdict"] in ("A", "B", "tie")) == ("ok", True) or \
                (v["status"], v["verdict"], v["reason"]) == ("failed", None, "unparseable_output")
    assert s["failed_reasons"] == ({"unparseable_output": s["failed"]} if s["failed"] else {})
    print(f"generate: failed {s['failed']}, retried {judge.stats['retried']}, "
          f"consistency {s['position_consistency']}")


# -- run_pairwise in process, with fake judges whose answers are known ----------------------------
def _cfg(paths, out, **kw):
    from definemed.eval.pairwise import PairwiseConfig
    from definemed.llm.base import BackendConfig

    return PairwiseConfig(answers=paths, judge=BackendConfig(kind="openai", model="fake", base_url="http://x/v1"),
                          output_dir=out, n_boot=200, **kw)


def test_pairwise_run_win_rates_follow_the_judges_preference(answer_files, tmp_path):
    """The fake judge prefers the answer with more medical keywords: the references beat the short
    generic answer on exactly the items where they have more of them."""
    from definemed.eval.pairwise_run import run_pairwise, summary_lines

    from .judge_fakes import MEDICAL, FakeJudge

    _, paths = answer_files
    metrics = run_pairwise(_cfg(paths[:2], tmp_path), backend=FakeJudge())
    refs = {it.id: it.reference for it in sample.load_instructions()[:6]}
    short = "Das kommt darauf an. Fragen Sie im Zweifel Ihre Ärztin."
    expected = [1.0 if len(MEDICAL.findall(r)) > len(MEDICAL.findall(short)) else
                0.0 if len(MEDICAL.findall(r)) < len(MEDICAL.findall(short)) else 0.5 for r in refs.values()]
    m = metrics["fake:judge|loglik"]["referenz vs kurz"]
    assert m["n"] == 6 and m["failed"] == 0 and m["win_rate"]["mean"] == pytest.approx(sum(expected) / 6)
    assert 0.5 < m["win_rate"]["mean"]  # the references really are more medical than "ask your doctor"
    assert any("failed 0" in line for line in summary_lines(metrics))


def test_pairwise_run_counts_failed_judge_calls_and_failed_answers(answer_files, tmp_path):
    from definemed.eval.pairwise_run import run_pairwise, summary_lines

    from .judge_fakes import FakeJudge, write_answers

    run, paths = answer_files
    metrics = run_pairwise(_cfg(paths[:2], tmp_path / "a"), backend=FakeJudge(fail="no_logprobs"))
    m = metrics["fake:judge|loglik"]["referenz vs kurz"]
    assert (m["n"], m["failed"], m["failed_reasons"]) == (0, 6, {"no_logprobs": 6})
    assert m["win_rate"]["n"] == 0  # no made-up verdicts behind the rate
    out = json.loads((tmp_path / "a" / "pairwise.json").read_text())["judges"]["fake:judge|loglik"]
    assert out["failed_calls_by_reason"] == {"no_logprobs": 12}
    assert any("failed 6 (no_logprobs 6)" in line for line in summary_lines(metrics))
    # an answer that failed to generate is not judged: it is a failed item, the others are judged
    rows = [json.loads(x) for x in paths[1].read_text().splitlines()]
    broken = write_answers(tmp_path / "kurz.jsonl", "kurz", {r["id"]: r["answer"] for r in rows},
                           {r["id"]: r["reference"] for r in rows}, {r["id"]: r["prompt"] for r in rows})
    lines = [json.loads(x) for x in broken.read_text().splitlines()]
    lines[0].update(status="failed", reason="http_error", answer="")
    broken.write_text("".join(json.dumps(x, ensure_ascii=False) + "\n" for x in lines))
    fake = FakeJudge()
    m = run_pairwise(_cfg([paths[0], broken], tmp_path / "b"), backend=fake)["fake:judge|loglik"]["referenz vs kurz"]
    assert (m["n"], m["failed"], m["failed_reasons"]) == (5, 1, {"answer_failed": 1})
    assert len(fake.prompts) == 10  # 5 items x 2 orders; the failed answer never reached the judge
