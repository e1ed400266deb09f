"""`definemed eval pairwise`: judge every pair of answer files, as the "pairwise" section of an
eval run directory (`definemed.eval.rundir.EvalRun`: config.yaml, manifest.json, metrics.json).

Written there: ``pairwise.json`` (per judge and pair the counts and rates with CIs, win-rate
matrix, Bradley–Terry ranking; agreement between judges), ``pairwise_verdicts.jsonl`` (one row
per judge, pair and item, both orders) and ``judge_cache.sqlite`` (a rerun costs no judge calls).
"""

from __future__ import annotations

import json
from itertools import combinations
from typing import Callable

from rich.markup import escape

from definemed.eval.answer_files import load_answer_files
from definemed.eval.bradley_terry import bradley_terry
from definemed.eval.embedding_judge import EmbeddingJudge, e5_embed
from definemed.eval.judge import LLMJudge
from definemed.eval.pairwise import (SCORE, PairwiseConfig, agreement, all_pairs, failed_answer, judge_llm,
                                     pair_items, summarise_pair, win_rate_matrix)
from definemed.errors import UserError
from definemed.llm.base import BackendConfig, LLMBackend, connect_backend
from definemed.eval.rundir import EvalRun
from definemed.runs import atomic_write_json, atomic_write_text, guarded


def _embedding_verdicts(judge: EmbeddingJudge, items: list[dict]) -> list[dict]:
    todo = [it for it in items if not it.get("answer_failed")]
    res = judge.compare([it["x"] for it in todo], [it["y"] for it in todo], [it["reference"] for it in todo])
    judged = {it["id"]: {"id": it["id"], **r} for it, r in zip(todo, res)}
    return [judged.get(it["id"]) or failed_answer(it) for it in items]


@guarded  # an exception records the evaluation as failed and releases the folder's lock
def run_pairwise(cfg: PairwiseConfig, backend: LLMBackend | None = None,
                 embed: Callable | None = None) -> dict:
    """Judge all pairs with every configured judge; returns the metrics (also in metrics.json)."""
    from definemed.console import console, progress_bar

    if cfg.judge is None and backend is None and not cfg.embedding_judge:
        raise UserError("no judge: give --judge-model, --judge-base-url or --embedding-judge")
    answers = load_answer_files(cfg.answers)
    labels = list(answers)
    for i, j in all_pairs(labels):
        if not pair_items(answers[labels[i]], answers[labels[j]]):
            raise UserError(f"{labels[i]} and {labels[j]} have no item ids in common")
    if cfg.judge is not None and backend is None:
        backend = connect_backend(cfg.judge)  # a server is checked before the run starts
    run = EvalRun(cfg.output_dir, "pairwise").start(
        cfg, seed=cfg.seed, inputs={f"answers_{k}": p for k, p in enumerate(cfg.answers)})

    judges: dict[str, object] = {}
    if backend is not None:
        cache = cfg.output_dir / "judge_cache.sqlite"
        for ref in [False] + ([True] if cfg.reference_guided else []):
            j = LLMJudge(backend, cfg.mode, reference_guided=ref, cache_path=cache, max_new_tokens=cfg.max_new_tokens)
            judges[j.name] = j
    if cfg.embedding_judge:
        ej = EmbeddingJudge(cfg.embedding_margin, embed or e5_embed)
        judges[ej.name] = ej

    pairs = all_pairs(labels)
    per_judge: dict[str, dict] = {}
    verdicts: dict[tuple[str, int, int], list[dict]] = {}
    rows: list[str] = []
    for name, judge in judges.items():
        summaries: dict[tuple[int, int], dict] = {}
        for i, j in pairs:
            items = pair_items(answers[labels[i]], answers[labels[j]], cfg.max_items)
            if isinstance(judge, LLMJudge):
                with progress_bar(f"{name}: {labels[i]} vs {labels[j]}", total=2 * len(items)) as advance:
                    out = judge_llm(judge, items, progress=advance)
            else:
                out = _embedding_verdicts(judge, items)
            verdicts[(name, i, j)] = out
            summaries[(i, j)] = {"a": labels[i], "b": labels[j],
                                 **summarise_pair(out, items, seed=cfg.seed, n_boot=cfg.n_boot)}
            rows += [json.dumps({"judge": name, "a": labels[i], "b": labels[j], **o}, ensure_ascii=False) for o in out]
        entry: dict = {"kind": "llm" if isinstance(judge, LLMJudge) else "embedding",
                       "pairs": list(summaries.values()), "win_rate_matrix": win_rate_matrix(labels, summaries)}
        if isinstance(judge, LLMJudge):
            entry["calls"] = dict(judge.stats)
            entry["failed_calls_by_reason"] = dict(judge.failures)
        if len(labels) >= 3:
            outcomes = {(i, j): {o["id"]: SCORE[o["verdict"]] for o in verdicts[(name, i, j)] if o["status"] == "ok"}
                        for i, j in pairs}
            entry["bradley_terry"] = bradley_terry(labels, outcomes, seed=cfg.seed)
        per_judge[name] = entry

    agree = [{"judges": [j1, j2], "a": labels[i], "b": labels[j],
              **agreement(verdicts[(j1, i, j)], verdicts[(j2, i, j)], seed=cfg.seed, n_boot=cfg.n_boot)}
             for j1, j2 in combinations(judges, 2) for i, j in pairs]
    result = {"models": labels, "judges": per_judge, "agreement": agree,
              "notes": "win = both orders agree; inconsistent orders count as ties; failed items (no verdict "
                       "from the model, or a failed answer) are left out and counted per reason"}
    atomic_write_json(cfg.output_dir / "pairwise.json", result)
    atomic_write_text(cfg.output_dir / "pairwise_verdicts.jsonl", "".join(r + "\n" for r in rows))
    metrics = {name: {f"{p['a']} vs {p['b']}": {
        "n": p["n"], "failed": p["failed"], "failed_reasons": p["failed_reasons"],
        "win_rate": p["win_rate"], "lc_win_rate": p["lc_win_rate"]["mean"],
        "position_consistency": p["position_consistency"]["mean"] if p["position_consistency"] else None}
        for p in e["pairs"]} for name, e in per_judge.items()}
    metrics["agreement"] = {f"{' ~ '.join(a['judges'])} ({a['a']} vs {a['b']})": a["agreement"]["mean"] for a in agree}
    run.finish(metrics, outputs={"pairwise": cfg.output_dir / "pairwise.json",
                                 "pairwise_verdicts": cfg.output_dir / "pairwise_verdicts.jsonl"})
    console.print(f"[green]pairwise results in {escape(str(cfg.output_dir / 'pairwise.json'))}[/]")
    return metrics


def judge_backend_config(model: str | None, base_url: str | None, served_model: str | None,
                         api_key_env: str = "OPENAI_API_KEY") -> BackendConfig | None:
    """The judge backend from the command-line options (None: no LLM judge)."""
    if base_url and model:
        raise UserError("give either --judge-model (local) or --judge-base-url (server), not both")
    if base_url:
        if not served_model:
            raise UserError("--judge-base-url needs --judge-served-model (the model name on the server)")
        return BackendConfig(kind="openai", model=served_model, base_url=base_url, api_key_env=api_key_env)
    if served_model:
        raise UserError("--judge-served-model needs --judge-base-url")
    return BackendConfig(kind="local", model=model) if model else None


def _reasons(reasons: dict | None) -> str:
    return f" ({', '.join(f'{k} {v}' for k, v in sorted(reasons.items()))})" if reasons else ""


def summary_lines(metrics: dict) -> list[str]:
    """One readable line per judge and pair, and per agreement."""
    def f(x) -> str:
        return "n/a" if x is None else f"{x:.3f}"

    lines = []
    for judge, pairs in metrics.items():
        if judge == "agreement":
            lines += [f"agreement {k}: {f(v)}" for k, v in pairs.items()]
            continue
        for pair, m in pairs.items():
            wr = m["win_rate"]
            lines.append(f"{judge} {pair}: win-rate {f(wr['mean'])} [{f(wr['ci_low'])}, {f(wr['ci_high'])}], "
                         f"LC {f(m['lc_win_rate'])}, position consistency {f(m['position_consistency'])}, "
                         f"n={m['n']}, failed {m['failed']}{_reasons(m.get('failed_reasons'))}")
    return lines
