"""Checks of a merged model after mergekit wrote it: does it load, generate, and look as expected?

A merge can "succeed" and still be unusable (missing tokenizer or chat template, wrong dtype,
NaNs from a degenerate interpolation, tensors dropped by an architecture mismatch), so every
merged model is reloaded with transformers before it counts as done.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from definemed.merge.weights import ST_DTYPES, TensorSpec, tensor_specs

PROBE = "Was ist Fieber?"  # a short German chat turn: generation must run end to end


def _header_problems(specs: dict[str, TensorSpec], expected: Optional[dict[str, TensorSpec]],
                     dtype: Optional[str], vocab_may_differ: bool) -> list[str]:
    problems = []
    if expected is not None:
        missing, extra = sorted(expected.keys() - specs.keys()), sorted(specs.keys() - expected.keys())
        if missing:
            problems.append(f"{len(missing)} tensors missing, e.g. {missing[0]}")
        if extra:
            problems.append(f"{len(extra)} unexpected tensors, e.g. {extra[0]}")
        for name in sorted(specs.keys() & expected.keys()):
            got, want = specs[name].shape, expected[name].shape
            if got != want and not (vocab_may_differ and got[1:] == want[1:]):
                problems.append(f"{name} has shape {list(got)}, expected {list(want)}")
                break
    if dtype is not None:
        wrong = sorted({ST_DTYPES[s.dtype] for s in specs.values()} - {dtype})
        if wrong:
            problems.append(f"weights stored as {', '.join(wrong)}, expected {dtype}")
    return problems


def verify_merged(folder: Path, expected: Optional[dict[str, TensorSpec]] = None, dtype: Optional[str] = None,
                  vocab_may_differ: bool = False, keep_model: bool = False) -> dict:
    """Check one merged folder; returns the report (``ok``, ``problems``, ...).

    ``expected`` are the instruct parent's tensors (same names and shapes, same parameter count);
    with ``keep_model`` the loaded (model, tokenizer) is returned under "_loaded" for reuse.
    """
    import torch

    from definemed.models import load_causal_lm
    from definemed.models.chat import GenerationSettings, build_messages, generate_chat

    specs = tensor_specs(folder, str(folder))
    problems = _header_problems(specs, expected, dtype, vocab_may_differ)
    load_dtype = dtype or ST_DTYPES[next(iter(specs.values())).dtype]
    model, tok = load_causal_lm(folder, dtype=load_dtype)
    n_params = model.num_parameters()
    if expected is not None and not vocab_may_differ:
        want = sum(s.numel for s in expected.values())
        if n_params != want:
            problems.append(f"{n_params:,} parameters after loading, expected {want:,}")
    loaded_dtypes = sorted({str(p.dtype).removeprefix("torch.") for p in model.parameters()})
    if loaded_dtypes != [load_dtype]:
        problems.append(f"loaded parameters are {', '.join(loaded_dtypes)}, expected {load_dtype}")
    with torch.no_grad():
        bad = [name for name, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        problems.append(f"{len(bad)} tensors hold NaN/inf, e.g. {bad[0]}")
    if tok.chat_template is None:
        problems.append("the tokenizer has no chat template")
    gen = generate_chat(model, tok, [build_messages(PROBE)], GenerationSettings(max_new_tokens=4))[0]
    if gen["new_tokens"] < 1:
        problems.append("generation produced no tokens")
    report = {"ok": not problems, "problems": problems, "parameters": n_params, "dtype": load_dtype,
              "tensors": len(specs), "chat_template": tok.chat_template is not None,
              "probe": PROBE, "generated": gen["text"], "new_tokens": gen["new_tokens"]}
    if keep_model:
        report["_loaded"] = (model, tok)
    return report
