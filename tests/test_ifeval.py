"""Instruction checks against IFEval's definitions (lm-eval tasks/ifeval), on German medical text."""

import json

import pytest

from definemed.data import sample
from definemed.data.schemas import InstructionItem
from definemed.eval.ifeval import CHECKS, DEVIATIONS, check_constraints, count_sentences, loose_variants


def item(*constraints):
    return InstructionItem(id="x", category="c", instruction="Tu etwas.", constraints=list(constraints)).constraints


# (answer, constraint, strict, loose)
CASES = [
    ("- Ruhe\n- Tee trinken\n- Fieber messen", {"type": "bullet_count", "n": 3}, True, True),
    ("- Ruhe\n- Tee trinken", {"type": "bullet_count", "n": 3}, False, False),
    ("• Ruhe\n* Tee\n- Fieber messen\nGute Besserung", {"type": "bullet_count", "n": 3}, True, True),
    # IFEval counts every line that starts with "-" or a single "*", with or without a space
    ("-Ruhe\n-Tee trinken\n-Fieber messen", {"type": "bullet_count", "n": 3}, True, True),
    ("**Wichtig:** viel trinken\n- Ruhe\n- Tee", {"type": "bullet_count", "n": 2}, True, True),
    ("1. Anamnese\n2. Untersuchung\n3. Labor", {"type": "numbered_list", "n": 3}, True, True),
    ("1. Anamnese\n3. Labor\n2. Untersuchung", {"type": "numbered_list", "n": 3}, False, False),
    ("Blutdruck " * 60, {"type": "max_words", "n": 60}, True, True),
    ("Blutdruck " * 61, {"type": "max_words", "n": 60}, False, False),
    ("Die Long-Covid-Ambulanz berät Betroffene.", {"type": "max_words", "n": 4}, True, True),
    ("Blutdruck " * 10, {"type": "min_words", "n": 11}, False, False),
    ("Erster Satz. Zweiter Satz, z. B. mit Abkürzung. Dritter!", {"type": "max_sentences", "n": 3}, True, True),
    ("Fieber. Husten. Schnupfen.", {"type": "max_sentences", "n": 2}, False, False),
    ("Bitte gehen Sie zu Ihrem Hausarzt, wenn das Fieber bleibt.", {"type": "language", "lang": "de"}, True, True),
    ("Please see your doctor if the fever persists.", {"type": "language", "lang": "de"}, False, False),
    ("Der HAUSARZT hilft.", {"type": "include_keywords", "keywords": ["Hausarzt"]}, True, True),
    # whole words: "Eisen" is not in "Reisen", "Hausarzt" not in "Hausarztpraxis"
    ("Auf Reisen sollten Sie genug trinken.", {"type": "include_keywords", "keywords": ["Eisen"]}, False, False),
    ("Die Hausarztpraxis ist geschlossen.", {"type": "include_keywords", "keywords": ["Hausarzt"]}, False, False),
    ("Eisen steckt in Linsen.", {"type": "include_keywords", "keywords": ["eisen"]}, True, True),
    ("Nehmen Sie Vitamin B12 (Cobalamin) ein.", {"type": "include_keywords", "keywords": ["B12 (Cobalamin)"]},
     True, True),
    ("Z. n. Cholezystektomie 2019.", {"type": "exclude_keywords", "keywords": ["cholezystektomie"]}, False, False),
    ("Die Gallenblase wurde entfernt.", {"type": "exclude_keywords", "keywords": ["Galle"]}, True, True),
    ("Kurz gesagt: ja.", {"type": "starts_with", "text": "Kurz gesagt:"}, True, True),
    ("kurz gesagt: ja.", {"type": "starts_with", "text": "Kurz gesagt:"}, True, True),
    ("Alles gut. Gute Besserung!", {"type": "ends_with", "text": "Gute Besserung!"}, True, True),
    # IFEval's end_checker: case-insensitive, surrounding quotes stripped
    ('"Trinken Sie viel. Gute besserung!"', {"type": "ends_with", "text": "Gute Besserung!"}, True, True),
    ("Gute Besserung! Ihr Praxisteam", {"type": "ends_with", "text": "Gute Besserung!"}, False, False),
    ("Ja, aber nur mit Rezept.", {"type": "no_commas"}, False, False),
    ("Ja aber nur mit Rezept.", {"type": "no_commas"}, True, True),
    ("### Ursachen\nStress\n### Therapie\nRuhe", {"type": "sections", "n": 2, "marker": "###"}, True, True),
    ("### Ursachen\nStress", {"type": "sections", "n": 2, "marker": "###"}, False, False),
]


@pytest.mark.parametrize("answer,constraint,strict,loose", CASES)
def test_checks(answer, constraint, strict, loose):
    (res,) = check_constraints(answer, item(constraint))
    assert (res["strict"], res["loose"]) == (strict, loose)


def test_every_constraint_type_of_the_instruction_set_has_a_case():
    path = sample.sample_dir() / "instructions_de" / "instructions_de.jsonl"
    used = {c["type"] for line in path.read_text(encoding="utf-8").splitlines() if line.strip()
            for c in json.loads(line)["constraints"]}
    tested = {c["type"] for _, c, _, _ in CASES}
    assert used <= tested and set(CHECKS) <= tested


def test_loose_variants_are_ifevals_eight():
    answer = "Gerne!\n**Kurz gesagt:** viel trinken.\nAlles Gute"
    assert loose_variants(answer) == [
        answer, "Gerne!\nKurz gesagt: viel trinken.\nAlles Gute",
        "**Kurz gesagt:** viel trinken.\nAlles Gute", "Gerne!\n**Kurz gesagt:** viel trinken.",
        "**Kurz gesagt:** viel trinken.",
        "Kurz gesagt: viel trinken.\nAlles Gute", "Gerne!\nKurz gesagt: viel trinken.", "Kurz gesagt: viel trinken.",
    ]


def test_loose_accepts_preamble_that_strict_rejects():
    answer = "Gerne, hier die Antwort:\nKurz gesagt: Ruhe und viel trinken."
    (res,) = check_constraints(answer, item({"type": "starts_with", "text": "Kurz gesagt:"}))
    assert res == {"type": "starts_with", "strict": False, "loose": True}


def test_loose_combines_dropping_the_preamble_and_the_asterisks():
    answer = "Gerne!\n**Kurz gesagt:** Ruhe und viel trinken."
    (res,) = check_constraints(answer, item({"type": "starts_with", "text": "Kurz gesagt:"}))
    assert res == {"type": "starts_with", "strict": False, "loose": True}


@pytest.mark.parametrize("constraint", [{"type": "no_commas"}, {"type": "exclude_keywords", "keywords": ["Arzt"]},
                                        {"type": "max_words", "n": 50}])
def test_an_empty_answer_follows_no_instruction(constraint):
    (res,) = check_constraints("  \n ", item(constraint))
    assert res["strict"] is False and res["loose"] is False


@pytest.mark.parametrize("text,n", [
    ("Der Blutdruck lag bei 140/90 mmHg. Das ist leicht erhöht.", 2),
    ("Nehmen Sie z. B. Ibuprofen ein. Die Dosis beträgt ca. 400 mg bzw. 2,5 mg/kg.", 2),
    ("Laut Dr. Albers, u. a. Internist, ist das harmlos, d. h. kein Grund zur Sorge.", 1),
    ("Geben Sie 0.5 mg. Der TSH-Wert liegt bei 6.8 mU/l.", 2),
    ("Z. n. Appendektomie 2019. Die Medikation p.o. fortführen.", 2),
    ("Der Befund ist o. B. und die Antibiose läuft i.v. weiter.", 1),
    ("Bitte 1 Tbl. tgl. einnehmen. Kontrolle ggf. in zwei Wochen.", 2),
    ("Am 12. März beginnt die Therapie. Ab dem 3. Tag wird es meist besser.", 2),
    ("Der HbA1c-Wert war 7. Das ist zu hoch.", 2),
    ("Die Operation war im Mai. Danach ging es ihm besser.", 2),
    ("Nehmen Sie Paracetamol o. Ä. gegen die Schmerzen.", 1),
    ("Wie lange dauert das? Etwa 3 Tage! Danach Kontrolle.", 3),
])
def test_german_sentence_count(text, n):
    assert count_sentences(text) == n


def test_deviations_from_ifeval_are_named():
    text = " ".join(DEVIATIONS)
    for topic in ("sentences", "include_keywords", "words", "language"):
        assert topic in text
