"""Robust parsing of annotator output: JSON first, then scores written in prose."""

from __future__ import annotations

import re

from definemed.llm.parse import json_objects

_ALIASES = {
    "medical": ("medical", "medizin", "medizinisch", "medizinische_relevanz", "medizinische relevanz", "relevanz",
                "medical_relevance"),
    "edu": ("edu", "bildung", "bildungswert", "educational", "educational_quality", "qualität", "quality"),
}


def _clip(v) -> int | None:
    try:
        x = float(str(v).strip().split("/")[0].replace(",", "."))
    except (TypeError, ValueError):
        return None
    return int(round(x)) if 0 <= x <= 5 else None


def parse_scores(text: str, criteria: tuple[str, ...] = ("medical", "edu")) -> dict | None:
    """Scores for every criterion, or None if any is missing. Also returns "reason" when given."""
    text = text.strip()
    # 1) a JSON object anywhere in the output
    for low in json_objects(text):
        out = {}
        for crit in criteria:
            for alias in _ALIASES.get(crit, (crit,)):
                if alias in low and _clip(low[alias]) is not None:
                    out[crit] = _clip(low[alias])
                    break
        if len(out) == len(criteria):
            out["reason"] = str(low.get("reason", low.get("begruendung", low.get("begründung", ""))))[:300]
            return out
    # 2) prose: "Medizinische Relevanz: 4", "Bildungswert 3/5"
    out = {}
    for crit in criteria:
        names = "|".join(re.escape(a).replace("_", "[ _]") for a in _ALIASES.get(crit, (crit,)))
        m = re.search(rf"(?:{names})[^0-9\n]{{0,25}}([0-5](?:[.,]\d)?)(?:\s*/\s*5)?", text, re.IGNORECASE)
        if m and _clip(m.group(1)) is not None:
            out[crit] = _clip(m.group(1))
    if len(out) == len(criteria):
        out["reason"] = ""
        return out
    return None
