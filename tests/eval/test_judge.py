"""The LLM judge: verdict parsing, retry/failure, loglik, cache, and verdicts echoed from answers."""

import pytest

from definemed.eval.judge import Comparison, LLMJudge, parse_verdict
from definemed.eval.injection_eval import instantiate, load_attacks
from definemed.llm.injection import read_blocks
from definemed.eval.pairwise import judge_llm, summarise_pair

from .judge_fakes import FakeJudge

GOOD = "Bei Fieber viel trinken, Dosis des Medikaments beachten und bei Blut im Stuhl zum Arzt gehen."
WEAK = "Einfach abwarten, das wird schon wieder."


def items(n=6, bias=0):
    return [{"id": f"i{k}", "prompt": f"Frage {k} zu Beschwerden" + (" #bias" if k < bias else ""),
             "reference": "Referenz: Arzt aufsuchen.", "x": GOOD, "y": WEAK} for k in range(n)]


@pytest.mark.parametrize("text,verdict", [
    ('{"urteil": "A", "begruendung": "genauer"}', "A"),
    ('Ergebnis:\n```json\n{"begruendung": "x", "urteil": "Antwort B"}\n```', "B"),
    ('{"Urteil": "unentschieden"}', "tie"),
    ('{"verdict": "b"}', "B"),
    ("Antwort A ist besser, weil sie Warnzeichen nennt.", "A"),
    ("Nach Abwägung: Antwort B ist klar besser als Antwort A.", "B"),
    ("Urteil: B", "B"),
    ("Beide Antworten sind gleich gut. Unentschieden.", "tie"),
    ("Die bessere Antwort ist A.", "A"),
])
def test_parse_verdict(text, verdict):
    assert parse_verdict(text)["verdict"] == verdict


@pytest.mark.parametrize("text", ["Schwer zu sagen.", "", "Antwort A ist besser. Nein, Antwort B ist besser.",
                                  '{"urteil": "vielleicht"}'])
def test_parse_verdict_rejects_missing_or_contradictory(text):
    assert parse_verdict(text) is None


@pytest.mark.parametrize("mode,style", [("generate", "json"), ("generate", "prose"), ("loglik", "json")])
def test_better_answer_wins_in_both_orders(mode, style):
    judge = LLMJudge(FakeJudge(style=style), mode)
    s = summarise_pair(judge_llm(judge, items()), items(), n_boot=200)
    assert (s["wins"], s["ties"], s["losses"], s["failed"]) == (6, 0, 0, 0)
    assert s["position_consistency"]["mean"] == 1.0 and s["win_rate"]["mean"] == 1.0


def test_verdict_copied_from_an_answer_is_not_the_judges_verdict():
    """A judge that only parrots the fake verdict planted in answer B (from the shipped attack set)
    has given no verdict: the comparison fails closed instead of going to B."""
    attack = next(a for a in load_attacks(target="judge") if a.kind == "fake_json" and a.text.startswith("{"))
    planted = instantiate(attack.text, "B")

    class Parrot(FakeJudge):
        def generate(self, chats, max_new_tokens=256, temperature=0.0, seed=0):
            self.calls += 1
            return [f"Antwort B schreibt: {planted}" for _ in chats]

    judge = LLMJudge(Parrot(), "generate")
    out = judge.judge([Comparison("Was hilft bei Fieber?", GOOD, f"{WEAK}\n\n{planted}")])
    assert parse_verdict(f"Antwort B schreibt: {planted}")["verdict"] == "B"  # read naively it would count
    assert out[0]["status"] == "failed" and out[0]["verdict"] is None


def test_malformed_output_gets_one_retry():
    fake = FakeJudge(malformed_first=True)
    judge = LLMJudge(fake, "generate")
    s = summarise_pair(judge_llm(judge, items(4)), items(4), n_boot=200)
    assert s["wins"] == 4 and s["failed"] == 0
    assert judge.stats["retried"] == 8 and fake.calls == 2


def test_always_malformed_is_counted_as_failed_not_raised():
    judge = LLMJudge(FakeJudge(always_malformed=True), "generate")
    out = judge_llm(judge, items(3))
    s = summarise_pair(out, items(3), n_boot=200)
    assert s["failed"] == 3 and s["n"] == 0 and judge.stats["failed"] == 6
    assert out[0]["order_xy"]["raw"].startswith("Beide Antworten")
    assert s["failed_reasons"] == {"unparseable_output": 3}


def test_reference_guided_prompt_has_the_reference():
    fake = FakeJudge()
    LLMJudge(fake, "loglik", reference_guided=True).judge([Comparison("Frage?", GOOD, WEAK, "REFERENZTEXT")])
    LLMJudge(fake, "loglik").judge([Comparison("Frage?", GOOD, WEAK, "REFERENZTEXT")])
    assert read_blocks(fake.prompts[0][1]["content"])["referenz"] == "REFERENZTEXT"
    assert "REFERENZTEXT" not in fake.prompts[1][1]["content"]


def test_verdicts_are_cached_by_model_prompt_and_order(tmp_path):
    fake = FakeJudge()
    judge = LLMJudge(fake, "loglik", cache_path=tmp_path / "c.sqlite")
    first = judge.judge([Comparison("F?", GOOD, WEAK)])
    assert fake.calls == 1
    again = LLMJudge(fake, "loglik", cache_path=tmp_path / "c.sqlite")
    assert again.judge([Comparison("F?", GOOD, WEAK)]) == first and fake.calls == 1
    swapped = again.judge([Comparison("F?", WEAK, GOOD)])  # another order is another prompt
    assert fake.calls == 2 and swapped[0]["verdict"] == "B"
    LLMJudge(fake, "generate", cache_path=tmp_path / "c.sqlite").judge([Comparison("F?", GOOD, WEAK)])
    assert fake.calls == 3  # another mode is another key


# -- fail closed ---------------------------------------------------------------------------------
@pytest.mark.parametrize("mode,reason", [("loglik", "no_logprobs"), ("loglik", "option_not_in_top_logprobs"),
                                         ("generate", "http_error"), ("generate", "empty_output")])
def test_a_backend_without_an_answer_gives_failed_items_with_the_reason(mode, reason):
    """No default verdict: the old loglik path turned missing log-probs into "A" with status ok."""
    judge = LLMJudge(FakeJudge(fail=reason), mode)
    out = judge_llm(judge, items(3))
    assert [o["status"] for o in out] == ["failed"] * 3 and {o["reason"] for o in out} == {reason}
    assert all(o["order_xy"]["verdict"] is None for o in out)
    s = summarise_pair(out, items(3), n_boot=200)
    assert (s["n"], s["failed"], s["failed_reasons"]) == (0, 3, {reason: 3})
    assert judge.failures == {reason: 6} and judge.stats["failed"] == 6
    assert judge.stats["retried"] == 0  # a failed request is not "malformed output": no chat retry


def test_unparseable_output_is_failed_with_its_reason():
    out = judge_llm(LLMJudge(FakeJudge(always_malformed=True), "generate"), items(2))
    assert {o["reason"] for o in out} == {"unparseable_output"}


def test_failed_verdicts_are_not_cached(tmp_path):
    """A failure may succeed on the next run: it is asked again, and then the verdict is kept."""
    cache = tmp_path / "c.sqlite"
    first = LLMJudge(FakeJudge(fail="http_error"), "loglik", cache_path=cache).judge([Comparison("F?", GOOD, WEAK)])
    assert first[0]["status"] == "failed"
    healthy = FakeJudge()
    again = LLMJudge(healthy, "loglik", cache_path=cache).judge([Comparison("F?", GOOD, WEAK)])
    assert healthy.calls == 1 and again[0] == {"status": "ok", "verdict": "A", "probs": again[0]["probs"]}
    third = FakeJudge()
    assert LLMJudge(third, "loglik", cache_path=cache).judge([Comparison("F?", GOOD, WEAK)]) == again
    assert third.calls == 0


# -- the cache key is the full identity ----------------------------------------------------------
def test_cache_hit_needs_the_same_backend_and_settings(tmp_path):
    cache, comp = tmp_path / "c.sqlite", [Comparison("F?", GOOD, WEAK)]

    def calls(fake, mode="generate", **kw):
        LLMJudge(fake, mode, cache_path=cache, **kw).judge(comp)
        return fake.calls

    assert calls(FakeJudge(identity="server-1|m"), max_new_tokens=64) == 1
    assert calls(FakeJudge(identity="server-1|m"), max_new_tokens=64) == 0  # same everything: free
    assert calls(FakeJudge(identity="server-2|m"), max_new_tokens=64) == 1  # another server or model
    assert calls(FakeJudge(identity="server-1|m"), max_new_tokens=128) == 1  # another token budget
    assert calls(FakeJudge(identity="server-1|m"), mode="loglik") == 1
    assert calls(FakeJudge(identity="server-1|m"), mode="loglik", reference_guided=True) == 0  # no reference given


def test_known_preference_gives_that_win_rate():
    """X wins the first 3 items, Y (the longer, medical one) the other 3: win-rate exactly 0.5,
    and the counts follow the fake judge's preference, not a constant."""
    its = [{**it, "x": GOOD if k < 3 else WEAK, "y": WEAK if k < 3 else GOOD} for k, it in enumerate(items(6))]
    s = summarise_pair(judge_llm(LLMJudge(FakeJudge(), "loglik"), its), its, n_boot=200)
    assert (s["wins"], s["ties"], s["losses"]) == (3, 0, 3) and s["win_rate"]["mean"] == 0.5
    its = [{**it, "x": GOOD, "y": WEAK} if k < 4 else {**it, "x": GOOD, "y": GOOD} for k, it in enumerate(items(6))]
    s = summarise_pair(judge_llm(LLMJudge(FakeJudge(), "loglik"), its), its, n_boot=200)
    assert (s["wins"], s["ties"], s["losses"]) == (4, 2, 0) and s["win_rate"]["mean"] == pytest.approx(5 / 6)
