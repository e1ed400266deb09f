import pytest

from definemed.data.schemas import InstructionItem
from definemed.eval.ifeval import check_constraints, count_sentences


def item(*constraints):
    return InstructionItem(id="x", category="c", instruction="Tu etwas.", constraints=list(constraints)).constraints


@pytest.mark.parametrize("answer,constraint,strict", [
    ("- eins\n- zwei\n- drei", {"type": "bullet_count", "n": 3}, True),
    ("- eins\n- zwei", {"type": "bullet_count", "n": 3}, False),
    ("• a\n* b\n- c\nText", {"type": "bullet_count", "n": 3}, True),
    ("1. a\n2. b\n3. c", {"type": "numbered_list", "n": 3}, True),
    ("1. a\n3. b\n2. c", {"type": "numbered_list", "n": 3}, False),
    ("wort " * 60, {"type": "max_words", "n": 60}, True),
    ("wort " * 61, {"type": "max_words", "n": 60}, False),
    ("wort " * 10, {"type": "min_words", "n": 11}, False),
    ("Erster Satz. Zweiter Satz, z. B. mit Abkürzung. Dritter!", {"type": "max_sentences", "n": 3}, True),
    ("Eins. Zwei. Drei.", {"type": "max_sentences", "n": 2}, False),
    ("Bitte gehen Sie zu Ihrem Hausarzt, wenn das Fieber bleibt.", {"type": "language", "lang": "de"}, True),
    ("Please see your doctor if the fever persists.", {"type": "language", "lang": "de"}, False),
    ("Der HAUSARZT hilft.", {"type": "include_keywords", "keywords": ["Hausarzt"]}, True),
    ("Nehmen Sie ein Antibiotikum.", {"type": "exclude_keywords", "keywords": ["antibiotikum"]}, False),
    ("Kurz gesagt: ja.", {"type": "starts_with", "text": "Kurz gesagt:"}, True),
    ("Alles gut. Gute Besserung!", {"type": "ends_with", "text": "Gute Besserung!"}, True),
    ("Ja, aber", {"type": "no_commas"}, False),
    ("### A\ntext\n### B\ntext", {"type": "sections", "n": 2, "marker": "###"}, True),
])
def test_checks(answer, constraint, strict):
    (res,) = check_constraints(answer, item(constraint))
    assert res["strict"] is strict
    assert res["loose"] or not strict


def test_loose_accepts_preamble_that_strict_rejects():
    answer = "Gerne, hier die Antwort:\nKurz gesagt: Ruhe und viel trinken."
    (res,) = check_constraints(answer, item({"type": "starts_with", "text": "Kurz gesagt:"}))
    assert res == {"type": "starts_with", "strict": False, "loose": True}


def test_sentence_count_ignores_decimal_numbers():
    assert count_sentences("Der Wert liegt bei 6.8 mU/l. Das ist erhöht.") == 2
