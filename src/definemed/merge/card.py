"""The model card (README.md) written into every merged model folder."""

from __future__ import annotations

from typing import Any, Optional

import yaml

from definemed.merge.config import TASK_VECTOR_METHODS, MergeConfig

METHOD_NAMES = {"slerp": "SLERP (spherical linear interpolation)", "linear": "linear interpolation",
                "ties": "TIES", "dare_ties": "DARE-TIES", "task_arithmetic": "task arithmetic"}


def model_card(cfg: MergeConfig, label: str, t: Optional[float], parents: dict[str, dict],
               mergekit_yaml: str, checks: dict[str, Any]) -> str:
    """Markdown with a Hugging Face metadata header naming the parents, method and parameters."""
    refs = {role: info.get("ref", info["path"]) for role, info in parents.items()}
    meta = {"library_name": "transformers", "tags": ["merge", "mergekit", "definemed"],
            "base_model": [r for r in refs.values() if "/" in r and not r.startswith(("/", "."))] or None}
    meta = {k: v for k, v in meta.items() if v is not None}
    lines = ["---", yaml.safe_dump(meta, sort_keys=False).rstrip(), "---", "",
             f"# {cfg.name} / {label}", ""]
    if cfg.mergekit is not None:
        lines += ["Merged with [mergekit](https://github.com/arcee-ai/mergekit) from a raw mergekit config "
                  "(below) by `definemed merge`.", ""]
    else:
        method = METHOD_NAMES[cfg.method]
        lines += [f"A merge of a continually pre-trained model with its instruct parent by {method}, made with "
                  "[mergekit](https://github.com/arcee-ai/mergekit) by `definemed merge`.", "",
                  f"- interpolation factor t = {t:g}: the share of the continually pre-trained model "
                  "(0 = instruct parent, 1 = CPT model)"]
        if cfg.density() is not None:
            lines.append(f"- density = {cfg.density():g} (share of each task vector kept)")
        tokenizer = cfg.tokenizer_source or "the instruct parent's (identical in all parents)"
        lines += [f"- dtype: {cfg.dtype}", f"- tokenizer: {tokenizer}", ""]
    lines += ["## Parents", "", "| role | reference | local path | parameters |", "|---|---|---|---|"]
    for role, info in parents.items():
        lines.append(f"| {role} | `{refs[role]}` | `{info['path']}` | {info.get('parameters', 0):,} |")
    lines += ["", "## Checks after merging", ""]
    status = "passed" if checks.get("ok") else "FAILED: " + "; ".join(checks.get("problems", []))
    lines += [f"Reloaded with transformers: {status}. {checks.get('parameters', 0):,} parameters, "
              f"dtype {checks.get('dtype')}, greedy continuation of “{checks.get('probe')}”: "
              f"“{checks.get('generated', '')}”.", "",
              "## mergekit configuration", "",
              "Rerun by hand: `mergekit-yaml mergekit.yaml OUTPUT_DIR --copy-tokenizer` (this file is "
              "`mergekit.yaml` in this folder).", ""]
    if cfg.mergekit is None and cfg.method in TASK_VECTOR_METHODS and cfg.tokenizer_source is None:
        lines += ["The CLI copies config.json and the tokenizer from the base model; this folder holds the "
                  "instruct parent's (same weights, but its chat template and end-of-turn token).", ""]
    lines += ["```yaml", mergekit_yaml.rstrip(), "```", ""]
    return "\n".join(lines)
