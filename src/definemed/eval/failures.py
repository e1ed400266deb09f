"""Failure modes of a model's answers: language mixing, verbosity, repetition, template leakage,
instruction following and referral to professionals. Every rate comes with a bootstrap 95% CI
over answers (`definemed.eval.bootstrap`).

- language mixing: `definemed.eval.language_mixing` (rule documented there).
- verbosity: words per answer; per item the ratio to the reference's words and, with a baseline
  model, to the baseline's answer (same item); share of answers that hit the token limit.
- repetition: share of duplicate word 4-grams (1 − distinct/total, lower-cased); an answer is a
  *degenerate loop* if that share is ≥ 0.5 with at least 12 4-grams, or one sentence (≥ 3 words)
  occurs ≥ 3 times.
- template leakage: chat-template tokens or role markup in the answer (`LEAKAGE_PATTERNS`).
- instruction following: `definemed.eval.ifeval` strict and loose per constraint (by type) and
  per item (all constraints of the item pass).
- referral: for items with ``must_refer_to_professional``, a loose keyword check: the answer
  mentions Arzt/Ärztin (also compounds such as Hausärztin and "ärztlich"), doctor, Apotheke,
  Notaufnahme, Notarzt, Notruf, 112 or 116117. It cannot tell "gehen Sie zum Arzt" from "Sie
  brauchen keinen Arzt"; it measures whether the topic of professional help comes up at all.
"""

from __future__ import annotations

import re
from collections import Counter

import numpy as np

from definemed.eval.bootstrap import mean_with_ci
from definemed.eval.ifeval import DEVIATIONS as IFEVAL_DEVIATIONS
from definemed.eval.ifeval import REFERENCE as IFEVAL_REFERENCE
from definemed.eval.ifeval import check_constraints, words
from definemed.eval.language_mixing import foreign_detection, mixing

LEAKAGE_PATTERNS = {
    "im_start/im_end": r"<\|im_(start|end)\|>",
    "special <|...|> token": r"<\|(endoftext|user|assistant|system|eot_id|start_header_id|end_header_id|end)\|>",
    "[INST]": r"\[/?INST\]",
    "<s> / </s>": r"</?s>",
    "<<SYS>>": r"<</?SYS>>",
    "role line": r"(?m)^\s*(assistant|user|system)\s*$",
    "role prefix": r"(?m)^\s*(User|Assistant|Nutzer|Benutzer|Assistent|Human|System)\s*:",
    "### heading of a prompt format": r"(?m)^#{2,}\s*(Antwort|Answer|Anweisung|Instruction|Response|Frage|Question|Input)\b",
}
_LEAKAGE_RE = {name: re.compile(p, re.IGNORECASE if name != "role prefix" else 0) for name, p in LEAKAGE_PATTERNS.items()}
REFERRAL_RE = re.compile(r"\b(\w*ärzt\w*|\w*arzt\w*|doctor|physician|apothe\w*|notaufnahme|notruf\w*|"
                         r"rettungsdienst|112|116\s?117)\b", re.IGNORECASE)
_SENT_SPLIT = re.compile(r"(?<=[.!?])\s+|\n+")


def leakage(text: str) -> list[str]:
    """Names of the leakage patterns found in the answer."""
    return [name for name, rx in _LEAKAGE_RE.items() if rx.search(text)]


def repetition(text: str, n: int = 4) -> dict:
    """{"dup_ngram_share", "ngrams", "max_sentence_repeats", "loop"} of one answer."""
    toks = [w.lower() for w in words(text)]
    grams = [tuple(toks[i:i + n]) for i in range(len(toks) - n + 1)]
    dup = 1 - len(set(grams)) / len(grams) if grams else 0.0
    sents = [s.strip().lower() for s in _SENT_SPLIT.split(text) if len(s.split()) >= 3]
    max_rep = max(Counter(sents).values(), default=0)
    return {"dup_ngram_share": round(dup, 4), "ngrams": len(grams), "max_sentence_repeats": max_rep,
            "loop": (dup >= 0.5 and len(grams) >= 12) or max_rep >= 3}


def refers_to_professional(text: str) -> bool:
    return bool(REFERRAL_RE.search(text))


def _rate(flags, seed: int, n_boot: int) -> dict:
    return mean_with_ci([float(f) for f in flags], seed=seed, n_boot=n_boot)


def analyse_model(rows: dict[str, dict], items: dict, baseline: dict[str, dict] | None = None,
                  seed: int = 0, n_boot: int = 1000, max_examples: int = 5) -> tuple[dict, list[dict]]:
    """(report, examples) for one model's answers ({id: row}); ``items`` maps id → InstructionItem."""
    ids = sorted(rows)
    ans = {i: rows[i]["answer"] for i in ids}
    examples: list[dict] = []

    def example(kind: str, i: str, detail) -> None:
        if sum(e["kind"] == kind for e in examples) < max_examples:
            examples.append({"kind": kind, "id": i, "detail": detail, "answer": ans[i][:500]})

    # language mixing
    mix = {i: mixing(ans[i]) for i in ids}
    checked = [i for i in ids if mix[i]["checked"]]
    for i in checked:
        if mix[i]["foreign"]:
            example("language_mixing", i, mix[i]["foreign"][:3])
    language = {
        "answers_with_foreign_sentence": _rate([bool(mix[i]["foreign"]) for i in checked], seed, n_boot),
        "foreign_word_share": mean_with_ci([mix[i]["foreign_words"] / mix[i]["words"] for i in checked],
                                           seed=seed, n_boot=n_boot),
        "answers_without_checkable_sentence": len(ids) - len(checked),
        "foreign_languages": dict(Counter(f["lang"] for i in checked for f in mix[i]["foreign"])),
    }

    # verbosity
    n_words = {i: len(words(ans[i])) for i in ids}
    ref_ratio = [n_words[i] / len(words(rows[i]["reference"])) for i in ids
                 if rows[i].get("reference") and words(rows[i]["reference"])]
    verbosity = {
        "words_per_answer": mean_with_ci(list(n_words.values()), seed=seed, n_boot=n_boot),
        "median_words": float(np.median(list(n_words.values()))) if ids else float("nan"),
        "ratio_to_reference": mean_with_ci(ref_ratio, seed=seed, n_boot=n_boot),
        "hit_token_limit": _rate([bool(rows[i].get("hit_limit")) for i in ids], seed, n_boot),
        # words per answer measures the token limit when answers are cut off: the share that
        # stopped on their own, and their length, say what the model itself chose
        "stopped_on_own": _rate([not rows[i].get("hit_limit") for i in ids], seed, n_boot),
        "words_per_stopped_answer": mean_with_ci([n_words[i] for i in ids if not rows[i].get("hit_limit")],
                                                 seed=seed, n_boot=n_boot),
    }
    if baseline is not None:
        common = [i for i in ids if i in baseline and words(baseline[i]["answer"])]
        verbosity["ratio_to_baseline"] = mean_with_ci(
            [n_words[i] / len(words(baseline[i]["answer"])) for i in common], seed=seed, n_boot=n_boot)

    # repetition and template leakage
    rep = {i: repetition(ans[i]) for i in ids}
    leak = {i: leakage(ans[i]) for i in ids}
    for i in ids:
        if rep[i]["loop"]:
            example("degenerate_loop", i, rep[i])
        if leak[i]:
            example("template_leakage", i, leak[i])
    repetition_report = {"dup_4gram_share": mean_with_ci([rep[i]["dup_ngram_share"] for i in ids], seed=seed, n_boot=n_boot),
                         "degenerate_loops": _rate([rep[i]["loop"] for i in ids], seed, n_boot)}
    leakage_report = {"answers_with_leakage": _rate([bool(leak[i]) for i in ids], seed, n_boot),
                      "by_pattern": dict(Counter(p for i in ids for p in leak[i]))}

    # instruction following and referral
    known = [i for i in ids if i in items]
    per_type: dict[str, dict[str, list[float]]] = {}
    item_strict, item_loose, all_strict, all_loose = [], [], [], []
    for i in known:
        res = check_constraints(ans[i], items[i].constraints)
        if not res:
            continue
        for r in res:
            per_type.setdefault(r["type"], {"strict": [], "loose": []})
            per_type[r["type"]]["strict"].append(float(r["strict"]))
            per_type[r["type"]]["loose"].append(float(r["loose"]))
            all_strict.append(float(r["strict"]))
            all_loose.append(float(r["loose"]))
        item_strict.append(all(r["strict"] for r in res))
        item_loose.append(all(r["loose"] for r in res))
        if not item_loose[-1]:
            example("instruction_following", i, [r["type"] for r in res if not r["loose"]])
    referral_ids = [i for i in known if items[i].must_refer_to_professional]
    for i in referral_ids:
        if not refers_to_professional(ans[i]):
            example("missing_referral", i, "no mention of Arzt/Ärztin/Apotheke/112/Notaufnahme")
    instruction = {
        "items_with_constraints": len(item_strict), "items_unknown": len(ids) - len(known),
        "item_strict": _rate(item_strict, seed, n_boot), "item_loose": _rate(item_loose, seed, n_boot),
        "constraint_strict": mean_with_ci(all_strict, seed=seed, n_boot=n_boot),
        "constraint_loose": mean_with_ci(all_loose, seed=seed, n_boot=n_boot),
        "by_type": {t: {"strict": mean_with_ci(v["strict"], seed=seed, n_boot=n_boot),
                        "loose": mean_with_ci(v["loose"], seed=seed, n_boot=n_boot)} for t, v in sorted(per_type.items())},
        "referral": _rate([refers_to_professional(ans[i]) for i in referral_ids], seed, n_boot),
    }
    report = {"n_answers": len(ids), "language_mixing": language, "verbosity": verbosity,
              "repetition": repetition_report, "template_leakage": leakage_report,
              "instruction_following": instruction}
    return report, examples


def method() -> dict:
    """How the rates were measured, for failures.json's ``method`` section (the report shows it):
    the IFEval reference and our deviations, and the language-mixing detector's precision and
    recall for "not German" on the project's labelled sentences."""
    from definemed.data import sample
    from definemed.data.io import read_jsonl

    rows = read_jsonl(sample.sample_dir() / "eval" / "langid_sentences.jsonl")
    check = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in foreign_detection(rows).items()}
    return {"instruction_following": {"reference": IFEVAL_REFERENCE, "deviations": IFEVAL_DEVIATIONS},
            "language_mixing": {"rule": "per sentence: medical Latin masked, then lingua (definemed.eval.language_mixing)",
                                "foreign_sentence_detection": {"data": "data/sample/eval/langid_sentences.jsonl",
                                                               **check}}}
