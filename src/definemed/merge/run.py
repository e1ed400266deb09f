"""`definemed merge run`: merge the CPT model back with its instruct parent, one model per sweep point.

    1 pre-checks  paths, architectures, tensor names/shapes, tokenizers, dtypes  (prechecks.py)
    2 merge       mergekit in-process, CPU, safetensors only                    → <output_dir>/t<value>/
    3 check       reload with transformers, generate, parameter count and dtype  → t<value>/verify.json
    4 sweep table German medical perplexity + instruction following           → sweep.json, eval/*.json

Each point is merged into a hidden ``.t<value>.partial`` folder and renamed only after its checks
pass, so an existing ``t<value>/`` with a matching ``verify.json`` is complete: a rerun skips it
(and reuses cached scores), which makes an interrupted sweep resumable.
"""

from __future__ import annotations

import gc
import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Optional


from rich.markup import escape

from definemed.console import console
from definemed.errors import UserError
from definemed.merge import mergekit_config as mkc
from definemed.merge.card import model_card
from definemed.merge.checks import verify_merged
from definemed.merge.config import MergeConfig, point_label
from definemed.merge.prechecks import check_models, local_model
from definemed.data.heldout import inherit_training_index, parents_training_index
from definemed.merge.sweep_eval import cached_or_evaluate, load_eval_data, summary
from definemed.merge.weights import TOKENIZER_FILES, tensor_specs
from definemed.runs import RunDir, atomic_write_json, atomic_write_text, read_json

log = logging.getLogger("definemed.merge")
PARENT_T = {"instruct": 0.0, "cpt": 1.0}  # where the parents sit on the t axis (see config.py)


def merge_options(seed: int):
    from mergekit.options import MergeOptions

    # CPU math; never unpickle (inputs are checked to be safetensors); our own card and tokenizer.
    return MergeOptions(device="cpu", cuda=False, lazy_unpickle=False, trust_remote_code=False,
                        safe_serialization=True, copy_tokenizer=True, write_model_card=False,
                        allow_crimes=False, random_seed=seed, quiet=True)


def mergekit_merge(data: dict, out_path: Path, seed: int) -> None:
    """One merge with mergekit's Python API (the same code path as its `mergekit-yaml` CLI)."""
    from mergekit.io.tasks import LoaderCache
    from mergekit.merge import run_merge as mergekit_run_merge

    # mergekit logs through the root logger (`logging.info(...)`), which would call basicConfig and
    # from then on echo every INFO record of this process to stderr; a handler of our own, present
    # only during the merge, keeps its warnings visible and the rest of the run quiet.
    root, handler = logging.getLogger(), logging.StreamHandler()
    handler.setLevel(logging.WARNING)
    root.addHandler(handler)
    try:
        mergekit_run_merge(mkc.to_configuration(data), str(out_path), merge_options(seed))
    finally:
        root.removeHandler(handler)
        # mergekit keeps open file handles to every input in a per-thread singleton; a later merge
        # in this process must not read a stale index of a folder that was rewritten meanwhile.
        LoaderCache().flush_all()
        LoaderCache.loaders.clear()


def _plan(cfg: MergeConfig) -> tuple[dict[str, Path], dict[str, Path], list[tuple[str, Optional[float], dict]], dict]:
    """(models merged, parents, [(label, t, mergekit dict)], pre-check summary); runs the pre-checks."""
    parents: dict[str, Path] = {}
    if cfg.models is not None:  # instruct first: it is the reference every other model is compared with
        parents = {"instruct": local_model(cfg.models.instruct, "models.instruct"),
                   "cpt": local_model(cfg.models.cpt, "models.cpt")}
        if cfg.models.base:
            parents["base"] = local_model(cfg.models.base, "models.base")
    if cfg.mergekit is None:
        inputs = dict(parents)
        points = [(point_label(t), t, mkc.build(cfg, parents, t)) for t in cfg.points()]
        tokenizer_source = cfg.tokenizer_source
    else:
        data = mkc.raw(cfg)
        refs = mkc.referenced_models(mkc.to_configuration(data, "mergekit"))
        inputs = {f"mergekit model {i + 1}": local_model(r, f"mergekit model '{r}'") for i, r in enumerate(refs)}
        points = [(point_label(None), None, data)]
        # a raw config that sets a tokenizer (source or full spec) lets mergekit reconcile vocabularies
        tokenizer_source = data.get("tokenizer_source") or ("tokenizer" if data.get("tokenizer") else None)
    for _label, _t, data in points:
        mkc.to_configuration(data)  # every point must be a valid mergekit config before any work
    return inputs, parents, points, check_models(inputs, tokenizer_source)


def finish_tokenizer(cfg: MergeConfig, folder: Path, parents: dict[str, Path]) -> None:
    """Give the merged model the instruct parent's tokenizer, chat template and model config."""
    instruct = parents.get("instruct")
    if instruct is None:
        return
    if cfg.mergekit is None and cfg.tokenizer_source is None:
        # The tokenizers are identical (pre-checked), but only the instruct parent's files carry the
        # chat template and chat EOS; mergekit copies them, and config.json, from its base model
        # (the pre-trained one for ties, dare_ties and task_arithmetic).
        from transformers import AutoConfig

        for name in TOKENIZER_FILES:
            (folder / name).unlink(missing_ok=True)
            if (instruct / name).exists():
                shutil.copy2(instruct / name, folder / name)
        config = AutoConfig.from_pretrained(str(instruct))
        config.dtype = cfg.dtype
        config.save_pretrained(str(folder))
        return
    from transformers import AutoTokenizer  # mergekit built or copied a tokenizer: add the template only

    tok = AutoTokenizer.from_pretrained(str(folder))
    if tok.chat_template is None:
        tok.chat_template = AutoTokenizer.from_pretrained(str(instruct)).chat_template
        tok.save_pretrained(str(folder))
    if not (folder / "generation_config.json").exists() and (instruct / "generation_config.json").exists():
        shutil.copy2(instruct / "generation_config.json", folder / "generation_config.json")


def _fingerprint(data: dict, inputs: dict) -> str:
    return hashlib.sha256(json.dumps({"mergekit": data, "inputs": inputs}, sort_keys=True).encode()).hexdigest()


def _verified(folder: Path, fp: str) -> Optional[dict]:
    try:
        record = read_json(folder / "verify.json")
    except (OSError, json.JSONDecodeError):
        return None
    return record if record.get("fingerprint") == fp and record.get("checks", {}).get("ok") else None


def _merge_point(cfg: MergeConfig, label: str, t: Optional[float], data: dict, fp: str, parents_info: dict,
                 parents: dict[str, Path], expected) -> tuple[dict, object]:
    out = Path(cfg.output_dir)
    partial = out / f".{label}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    t0 = time.time()
    mergekit_merge(data, partial, cfg.seed)
    finish_tokenizer(cfg, partial, parents)
    inherit_training_index(parents.values(), partial)  # later held-out checks know what the parents saw
    yaml_text = mkc.to_yaml(data)
    atomic_write_text(partial / "mergekit.yaml", yaml_text)
    merge_s = time.time() - t0
    t0 = time.time()
    dtype = cfg.dtype if cfg.mergekit is None else (data.get("out_dtype") or data.get("dtype"))
    checks = verify_merged(partial, expected, dtype, vocab_may_differ=cfg.tokenizer_source is not None,
                           keep_model=cfg.eval.enabled)
    loaded = checks.pop("_loaded", None)
    if not checks["ok"]:
        raise UserError(f"{label}: the merged model in {partial} failed its checks: {'; '.join(checks['problems'])}")
    atomic_write_text(partial / "README.md", model_card(cfg, label, t, parents_info, yaml_text, checks))
    record = {"fingerprint": fp, "label": label, "t": t, "checks": checks, "merge_seconds": round(merge_s, 2),
              "check_seconds": round(time.time() - t0, 2)}
    atomic_write_json(partial / "verify.json", record)
    final = out / label
    if final.exists():
        shutil.rmtree(final)
    os.replace(partial, final)
    return record, loaded


def run_merge(cfg: MergeConfig) -> dict:
    """Merge every sweep point, check it, score it; returns the metrics (also in metrics.json)."""
    with RunDir(Path(cfg.output_dir), "merge") as run:
        return _run_merge(cfg, run)


def _run_merge(cfg: MergeConfig, run: RunDir) -> dict:
    from definemed.models import load_causal_lm

    out = run.path
    if (done := run.reuse(cfg)) is not None:
        return done
    console.print("[bold]merge 1/3[/] pre-checks")
    inputs, parents, points, prechecked = _plan(cfg)
    # Without a raw config the merged models are the parents: hash each folder once.
    extra = {f"parent/{k}": v for k, v in parents.items()} if cfg.mergekit is not None else {}
    run.start(cfg, seed=cfg.seed, inputs={**inputs, **extra})
    hashes = {k: v["sha256"] for k, v in run.manifest["inputs"].items()}
    log.info("pre-checks passed: %s", ", ".join(f"{k} {v['model_type']} {v['parameters']:,} parameters"
                                                for k, v in prechecked.items()))
    refs = {"instruct": getattr(cfg.models, "instruct", None), "cpt": getattr(cfg.models, "cpt", None),
            "base": getattr(cfg.models, "base", None)}
    parents_info = {role: {**info, "ref": refs.get(role) or info["path"]} for role, info in prechecked.items()}
    expected = tensor_specs(parents["instruct"]) if cfg.mergekit is None else None

    eval_data = None
    if cfg.eval.enabled:
        training = parents_training_index(parents.values())
        eval_data = load_eval_data(cfg.eval, training)
        console.print(f"held-out overlap with the parents' training data: {eval_data.heldout_overlap_docs} "
                      "documents excluded" + ("" if training is not None else " (no parent has a definemed training index)"),
                      highlight=False)
    rows = []
    for i, (label, t, data) in enumerate(points, 1):
        fp = _fingerprint(data, hashes)
        folder = out / label
        record, loaded = _verified(folder, fp), None
        if record is not None:
            console.print(f"[bold]merge 2/3[/] {escape(label)} ({i}/{len(points)}): already merged and checked, skipped")
        else:
            console.print(f"[bold]merge 2/3[/] {escape(label)} ({i}/{len(points)}): {escape(str(data['merge_method']))} with mergekit")
            record, loaded = _merge_point(cfg, label, t, data, fp, parents_info, parents, expected)
            log.info("%s merged in %.1fs, checked in %.1fs", label, record["merge_seconds"], record["check_seconds"])
        row = {"label": label, "t": t, "path": str(folder), "merge_seconds": record["merge_seconds"],
               "checks": record["checks"], "eval": None}
        if cfg.eval.enabled:
            console.print(f"[bold]merge 3/3[/] {escape(label)}: medical perplexity and instruction following")
            result = cached_or_evaluate(out / "eval" / f"{label}.json", cfg.eval, folder,
                                        lambda: loaded or load_causal_lm(folder, dtype=record["checks"]["dtype"]),
                                        eval_data, dtype=str(record["checks"]["dtype"]))
            row["eval"] = summary(result)
        rows.append(row)
        loaded = None
        gc.collect()

    parent_rows = []
    if cfg.eval.enabled and cfg.eval.include_parents:
        for role in ("instruct", "cpt"):
            if role not in parents:
                continue
            console.print(f"[bold]merge 3/3[/] parent {role}: medical perplexity and instruction following")
            path = parents[role]
            result = cached_or_evaluate(out / "eval" / f"{role}.json", cfg.eval, path,
                                        lambda: load_causal_lm(path, dtype=cfg.dtype), eval_data, dtype=cfg.dtype)
            parent_rows.append({"label": role, "t": PARENT_T[role], "path": str(path), "eval": summary(result)})
            gc.collect()

    sweep = {"name": cfg.name, "method": cfg.mergekit["merge_method"] if cfg.mergekit else cfg.method,
             "dtype": cfg.dtype, "density": cfg.density(), "models": parents_info,
             "eval_settings": cfg.eval.model_dump(mode="json"), "parents": parent_rows, "points": rows,
             "heldout_overlap_docs": eval_data.heldout_overlap_docs if eval_data else None}
    atomic_write_json(out / "sweep.json", sweep)
    metrics = {"method": sweep["method"], "points": rows, "parents": parent_rows,
               "heldout_overlap_docs": sweep["heldout_overlap_docs"], **_best(rows)}
    run.finish(metrics, outputs={"sweep": out / "sweep.json", **{r["label"]: r["path"] for r in rows}},
               manifest={"heldout_overlap_docs": sweep["heldout_overlap_docs"]})
    return metrics


def _best(rows: list[dict]) -> dict:
    scored = [r for r in rows if r["eval"]]
    if not scored:
        return {}
    best_ppl = min(scored, key=lambda r: r["eval"]["medical_ppl"])
    with_if = [r for r in scored if r["eval"]["if_strict"] is not None]
    best_if = max(with_if, key=lambda r: r["eval"]["if_strict"]) if with_if else None
    return {"best_medical_ppl": best_ppl["label"], "best_if_strict": best_if["label"] if best_if else None}
