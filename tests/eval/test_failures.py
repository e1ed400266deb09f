"""Failure modes: language mixing, repetition, template leakage, instruction following, referral."""

import pytest

from definemed.data import sample
from definemed.data.io import read_jsonl
from definemed.data.schemas import InstructionItem
from definemed.eval.failures import analyse_model, leakage, method, refers_to_professional, repetition
from definemed.eval.language_mixing import checkable, foreign_detection, langid_accuracy, mixing


def _langid_rows():
    return read_jsonl(sample.sample_dir() / "eval" / "langid_sentences.jsonl")


def test_langid_accuracy_on_the_projects_mixed_sentences():
    rows = _langid_rows()
    assert len(rows) >= 90 and {r["lang"] for r in rows} >= {"de", "en", "fr", "es", "it", "nl"}
    res = langid_accuracy(rows)
    assert res["accuracy"] >= 0.95 and res["undecided"] <= 15, res["misses"]


def test_foreign_sentence_detection_precision_and_recall():
    res = foreign_detection(_langid_rows())
    assert res["foreign"] >= 25
    assert res["precision"] >= 0.95 and res["recall"] >= 0.95, res


@pytest.mark.parametrize("sentence", [
    "Carcinoma in situ der Cervix uteri.",
    "Ileus bei Hernia inguinalis incarcerata.",
    "Morbus Basedow mit Struma diffusa.",
    "Ulcus duodeni mit Helicobacter pylori Nachweis.",
    "Fractura radii loco typico links.",
    "Diabetes insipidus centralis nach Trauma.",
])
def test_medical_latin_in_german_is_not_foreign(sentence):
    assert mixing(sentence)["foreign"] == []


def test_foreign_sentences_with_medical_latin_are_still_found():
    m = mixing("The biopsy confirmed a carcinoma in situ of the cervix. "
               "La paciente tiene diabetes mellitus tipo dos desde hace años.")
    assert [f["lang"] for f in m["foreign"]] == ["en", "es"]


def test_method_section_records_the_detector_check_and_ifeval_deviations():
    m = method()
    check = m["language_mixing"]["foreign_sentence_detection"]
    assert check["n"] == len(_langid_rows()) and 0.95 <= check["precision"] <= 1 and 0.95 <= check["recall"] <= 1
    assert "IFEval" in m["instruction_following"]["reference"] and m["instruction_following"]["deviations"]


def test_mixing_finds_the_english_sentence_in_a_german_answer():
    text = ("Bei einer Erkältung helfen Ruhe und viel Flüssigkeit.\n"
            "- Trinken Sie warmen Tee mit Honig.\n"
            "However, you should see a doctor if the fever lasts longer than three days.\n"
            "Dosis: 500 mg 1-0-1.")
    m = mixing(text)
    assert m["checked"] == 3 and m["skipped"] == 2  # "Dosis" and "500 mg 1-0-1."
    assert [f["lang"] for f in m["foreign"]] == ["en"]
    assert 0.4 < m["foreign_words"] / m["words"] < 0.6


def test_mixing_accepts_german_with_loanwords_and_skips_fragments():
    m = mixing("Das Follow-up beim Hausarzt ist in zwei Wochen geplant. OK. **Update:** 12.05.")
    assert m["foreign"] == [] and m["checked"] == 1
    assert not checkable("Ibuprofen 400 mg") and not checkable("| 5 | 10 | 20 |")


@pytest.mark.parametrize("text,found", [
    ("Gute Besserung!<|im_end|>", ["im_start/im_end"]),
    ("Antwort\n<|im_start|>assistant\nNoch etwas", ["im_start/im_end"]),
    ("Text [INST] mehr [/INST]", ["[INST]"]),
    ("<s> Hallo </s>", ["<s> / </s>"]),
    ("Hier ist die Antwort.\nassistant\nUnd noch einmal.", ["role line"]),
    ("User: Was ist das?\nAssistant: Eine Erkältung.", ["role prefix"]),
    ("### Antwort\nTrinken Sie viel.", ["### heading of a prompt format"]),
    ("<|user|> hallo", ["special <|...|> token"]),
    ("Ein Assistent in der Praxis misst den Blutdruck. Der User-Test lief gut.\n### Ursachen\n- Stress", []),
])
def test_template_leakage(text, found):
    assert leakage(text) == found


def test_repetition_and_degenerate_loops():
    normal = "Trinken Sie viel Wasser. Ruhen Sie sich aus. Messen Sie regelmäßig Fieber und gehen Sie bei Bedarf zum Arzt."
    loop = "Trinken Sie viel Wasser und ruhen Sie sich aus. " * 6
    stutter = "Das ist wichtig " * 20
    assert repetition(normal) == {"dup_ngram_share": 0.0, "ngrams": 16, "max_sentence_repeats": 1, "loop": False}
    r = repetition(loop)
    assert r["loop"] and r["max_sentence_repeats"] == 6 and r["dup_ngram_share"] > 0.7
    assert repetition(stutter)["loop"]
    assert not repetition("kurz")["loop"]


@pytest.mark.parametrize("text,refers", [
    ("Bitte lassen Sie das ärztlich abklären.", True),
    ("Gehen Sie zu Ihrer Hausärztin.", True),
    ("Fragen Sie in der Apotheke nach.", True),
    ("Rufen Sie sofort die 112 an.", True),
    ("Fahren Sie in die Notaufnahme.", True),
    ("Trinken Sie viel und ruhen Sie sich aus.", False),
])
def test_referral_keyword_check(text, refers):
    assert refers_to_professional(text) is refers


def _row(i, answer, reference=None, hit=False):
    return {"id": i, "model": "m", "prompt": "?", "answer": answer, "reference": reference, "hit_limit": hit}


def test_analyse_model_on_crafted_answers():
    items = {
        "a": InstructionItem(id="a", category="c", instruction="Nenne drei Punkte.", must_refer_to_professional=True,
                             constraints=[{"type": "bullet_count", "n": 3}, {"type": "max_words", "n": 30}]),
        "b": InstructionItem(id="b", category="c", instruction="Beginne mit Kurz gesagt:",
                             constraints=[{"type": "starts_with", "text": "Kurz gesagt:"}]),
        "c": InstructionItem(id="c", category="c", instruction="Erkläre.", must_refer_to_professional=True),
    }
    rows = {
        "a": _row("a", "- Ruhe halten\n- Viel trinken\n- Bei Fieber zum Arzt", reference="eins zwei drei vier fünf sechs"),
        "b": _row("b", "Gerne!\nKurz gesagt: Viel trinken und ausruhen.", reference="eins zwei drei"),
        "c": _row("c", ("Schlafen Sie ausreichend und essen Sie leicht. " * 5) + "This will help you recover quickly.<|im_end|>",
                  hit=True),
    }
    baseline = {k: {**v, "answer": "eins zwei drei"} for k, v in rows.items()}
    report, examples = analyse_model(rows, items, baseline, n_boot=200)
    lm, v, i = report["language_mixing"], report["verbosity"], report["instruction_following"]
    assert lm["answers_with_foreign_sentence"]["mean"] == pytest.approx(1 / 3) and lm["foreign_languages"] == {"en": 1}
    assert v["hit_token_limit"]["mean"] == pytest.approx(1 / 3)
    assert v["ratio_to_reference"]["n"] == 2 and v["ratio_to_reference"]["mean"] == pytest.approx((8 / 6 + 7 / 3) / 2)
    assert v["ratio_to_baseline"]["n"] == 3
    assert report["template_leakage"]["answers_with_leakage"]["mean"] == pytest.approx(1 / 3)
    assert report["repetition"]["degenerate_loops"]["mean"] == pytest.approx(1 / 3)
    assert i["items_with_constraints"] == 2
    assert i["item_strict"]["mean"] == pytest.approx(0.5) and i["item_loose"]["mean"] == 1.0
    assert i["by_type"]["starts_with"]["strict"]["mean"] == 0.0 and i["by_type"]["starts_with"]["loose"]["mean"] == 1.0
    assert i["referral"]["n"] == 2 and i["referral"]["mean"] == 0.5
    kinds = {e["kind"] for e in examples}
    assert kinds == {"language_mixing", "degenerate_loop", "template_leakage", "missing_referral"}
    for block in (lm["answers_with_foreign_sentence"], v["words_per_answer"], i["constraint_strict"]):
        assert block["ci_low"] <= block["mean"] <= block["ci_high"]
