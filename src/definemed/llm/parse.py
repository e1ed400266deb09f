"""Helpers for reading structured answers out of free LLM output (shared by annotator and judge)."""

from __future__ import annotations

import json
import re
from typing import Iterator


def json_objects(text: str) -> Iterator[dict]:
    """Every flat JSON object found anywhere in ``text`` (models like to wrap JSON in prose or
    ```json fences), keys lower-cased and stripped; unparseable candidates are skipped."""
    for match in re.finditer(r"\{[^{}]*\}", text, re.DOTALL):
        try:
            obj = json.loads(match.group(0))
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            yield {str(k).lower().strip(): v for k, v in obj.items()}
