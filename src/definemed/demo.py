"""`definemed demo` and `definemed pipeline`: the whole chain from one YAML.

corpus → continual pre-training → merge sweep → base-model checks → eval of base, CPT and
merged models (MCQ, answers, pairwise judging, failure modes) → the study's table → HTML report.
Each stage writes its own run directory under ``output_dir``; a rerun reuses finished stages.
The demo is this chain with the built-in settings (bundled model, sample data); `definemed
pipeline CONFIG` runs any subset of stages (``stages``) with any stage configs — language and
domain live in those configs (prompts, prefilter word lists, eval sets), not in code.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Literal, Optional, get_args

from pydantic import Field
from rich.markup import escape
from rich.table import Table

from definemed.config import Seed, StrictModel
from definemed.eval.suite import SuiteConfig
from definemed.console import console, out, progress_bar
from definemed.runs import RunDir

log = logging.getLogger("definemed.demo")

DEFAULT_SYSTEM = "Du bist ein hilfreicher medizinischer Assistent. Antworte immer auf Deutsch."


Stage = Literal["corpus", "train", "merge", "base", "eval", "report"]
STAGES = get_args(Stage)  # the order they always run in


class DemoConfig(StrictModel):
    output_dir: Path = Path("runs/demo")
    stages: list[Stage] = Field(default_factory=lambda: list(STAGES))  # any subset; runs in STAGES order
    seed: Seed = 0
    model: str = "smollm2-135m-instruct"
    system_prompt: str = DEFAULT_SYSTEM
    questions: list[str] = Field(default_factory=lambda: [
        "Welche Nebenwirkungen hat Ibuprofen?",
        "Was ist ein normaler Blutdruck bei Erwachsenen?",
    ])
    max_new_tokens: int = Field(80, ge=1)
    ppl_max_docs: int = Field(20, ge=1, description="held-out documents per domain for perplexity")
    ppl_max_length: int = Field(256, ge=16)
    corpus_config: Optional[Path] = Path("configs/demo-corpus.yaml")  # null skips the corpus stage
    corpus_overrides: list[str] = Field(default_factory=list)  # e.g. ["annotate.sample_size=16"]
    train_config: Optional[Path] = Path("configs/demo-train.yaml")  # null skips training (and merging)
    train_overrides: list[str] = Field(default_factory=list)  # e.g. ["max_steps=5"]
    merge_config: Optional[Path] = Path("configs/demo-merge.yaml")  # null skips merging
    merge_overrides: list[str] = Field(default_factory=list)  # e.g. ["sweep=[0.5]"]
    eval_merged: list[str] = Field(default_factory=lambda: ["t0.5"])  # merge sweep points to evaluate
    eval: SuiteConfig = Field(default_factory=SuiteConfig)


PipelineConfig = DemoConfig  # `definemed pipeline CONFIG` reads the same schema


def sample_summary_table() -> Table:
    from collections import Counter

    from definemed.data.sample import load_instructions, load_labels, load_mcq

    labels = load_labels()
    table = Table(title="Sample data (data/sample)")
    table.add_column("set")
    table.add_column("items", justify="right")
    table.add_column("details")
    med = sum(lab.medical >= 3 for lab in labels)
    splits = Counter(lab.split for lab in labels)
    table.add_row("web documents", str(len(labels)),
                  f"medical≥3: {med}, other: {len(labels) - med}; splits {dict(splits)}")
    mcq = load_mcq()
    table.add_row("MCQ", str(len(mcq)), f"{len({q.subject for q in mcq})} subjects")
    inst = load_instructions()
    table.add_row("instructions", str(len(inst)),
                  f"with constraints: {sum(bool(i.constraints) for i in inst)}, "
                  f"with reference: {sum(i.reference is not None for i in inst)}")
    return table


def _stage_config(path: Path) -> Path:
    """A config path relative to the working directory, else to the source checkout."""
    from definemed.data.sample import sample_dir

    repo = sample_dir().parents[1]
    return path if path.exists() or not (repo / path).exists() else repo / path


def stage_configs(cfg: DemoConfig) -> dict:
    """The validated config of every configured stage, wired to this run's folders: the corpus
    shards feed training, the trained model feeds the merge. Raises UserError on any bad file."""
    from definemed.config import load_config
    from definemed.corpus.config import CorpusConfig
    from definemed.merge.config import MergeConfig
    from definemed.train.config import TrainConfig

    base = [f"seed={cfg.seed}"]
    out: dict = {}
    if cfg.corpus_config is not None:
        out["corpus"] = load_config(CorpusConfig, _stage_config(cfg.corpus_config),
                                    [f"output_dir={cfg.output_dir / 'corpus'}", *base, *cfg.corpus_overrides])
    if cfg.train_config is not None:
        wire = [f"data.0.path={cfg.output_dir / 'corpus' / 'shards'}"] if cfg.corpus_config is not None else []
        out["train"] = load_config(TrainConfig, _stage_config(cfg.train_config),
                                   [f"output_dir={cfg.output_dir / 'train'}", *base, *wire, *cfg.train_overrides])
    if cfg.merge_config is not None:
        wire = [f"models.cpt={cfg.output_dir / 'train' / 'final'}"] if cfg.train_config is not None else []
        out["merge"] = load_config(MergeConfig, _stage_config(cfg.merge_config),
                                   [f"output_dir={cfg.output_dir / 'merge'}", *base, *wire, *cfg.merge_overrides])
    return out


STAGE_FILES = {"corpus": "corpus_config", "train": "train_config", "merge": "merge_config"}


def validate_pipeline(cfg: DemoConfig, source: str = "pipeline config") -> dict:
    """Everything a run needs, checked before its first stage (and all that `pipeline --check`
    does): a config for every stage in `stages`, every stage config, the eval section's files, the
    merge points to evaluate, and the model references of the stages that run — lightly, without
    loading weights (hub ids are taken as given; a folder must hold config.json). A model that an
    earlier stage of this same run writes (the CPT model for the merge) need not exist yet.
    Returns the stage configs (as `stage_configs`); raises UserError naming the file and field."""
    from definemed.config import field_problem
    from definemed.errors import UserError
    from definemed.merge.config import point_label

    wanted = set(cfg.stages)
    # a null stage config skips its stage when `stages` is left at its default (all); a stage the
    # user listed must not be skipped silently
    for stage, field in STAGE_FILES.items() if "stages" in cfg.model_fields_set else ():
        if stage in wanted and getattr(cfg, field) is None:
            raise field_problem(source, field, f"stages include {stage} but {field} is null "
                                f"(give a {stage} config or drop {stage} from stages)")
    configs = stage_configs(cfg)
    files = {stage: str(_stage_config(getattr(cfg, field))) for stage, field in STAGE_FILES.items()
             if getattr(cfg, field) is not None}

    def model_ok(ref: str, where: str, field: str, note: str = "", weights: bool = True) -> None:
        from definemed.models import check_model_ref

        try:
            check_model_ref(ref, weights=weights)
        except UserError as err:
            raise field_problem(where, field, f"{err}{note}") from None

    if "corpus" in wanted and "corpus" in configs:
        corpus = configs["corpus"]
        if corpus.tokenizer is not None:
            model_ok(corpus.tokenizer, files["corpus"], "tokenizer", weights=False)
        backend = corpus.annotate.annotator.backend
        if corpus.annotate.enabled and backend.kind == "local":
            model_ok(backend.model, files["corpus"], "annotate.annotator.backend.model")
    if "train" in wanted and "train" in configs:
        model_ok(configs["train"].model, files["train"], "model")
    merge = configs.get("merge")
    if "merge" in wanted and merge is not None and merge.models is not None:
        trained_here = "train" in wanted and cfg.train_config is not None  # the CPT model is this run's output
        for name in ("cpt", "instruct", "base"):
            ref = getattr(merge.models, name)
            if ref is not None and not (name == "cpt" and trained_here):
                note = " (the train stage's output: add train to stages, or run it first)" \
                    if name == "cpt" and cfg.train_config is not None else ""
                model_ok(ref, files["merge"], f"models.{name}", note)
        if merge.tokenizer_source not in (None, "instruct", "cpt", "base", "union"):
            model_ok(merge.tokenizer_source, files["merge"], "tokenizer_source")
    if wanted & {"base", "eval"}:
        model_ok(cfg.model, source, "model")
    if "eval" in wanted and cfg.eval.enabled:
        for field, problem in cfg.eval.input_problems():
            raise field_problem(source, f"eval.{field}", problem)
        if cfg.eval.judge_model is not None and cfg.eval.judge_base_url is None:
            model_ok(cfg.eval.judge_model, source, "eval.judge_model")
        if merge is not None and merge.mergekit is None:
            points = [point_label(t) for t in merge.points()]
            if unknown := [p for p in cfg.eval_merged if p not in points]:
                raise field_problem(source, "eval_merged", f"{', '.join(unknown)} not in the merge sweep "
                                    f"({', '.join(points)})")
    return configs


def _run_corpus_stage(corpus_cfg) -> dict:
    from definemed.corpus.pipeline import run_corpus
    from definemed.corpus.summary import print_summary

    console.rule("[bold]Corpus: FineMed-de in miniature")
    metrics = run_corpus(corpus_cfg)
    print_summary(metrics, corpus_cfg)
    return metrics


def _run_train_stage(train_cfg) -> dict:
    from definemed.train.loop import train
    from definemed.train.summary import print_train_summary

    console.rule("[bold]Continual pre-training on the corpus (+ general replay)")
    metrics = train(train_cfg)
    print_train_summary(metrics)
    return metrics


def _run_merge_stage(merge_cfg) -> dict:
    from definemed.merge.run import run_merge
    from definemed.merge.summary import print_sweep

    console.rule("[bold]Merging the CPT model back with the instruct model")
    metrics = run_merge(merge_cfg)
    print_sweep(metrics, merge_cfg.output_dir)
    return metrics


def run_demo(cfg: DemoConfig, source: str = "pipeline config") -> dict:
    """Every wanted stage, in order, while holding ``output_dir``'s lock (each stage also locks its
    own folder); everything is checked before the lock is taken or anything is written."""
    from definemed.runlock import held

    configs = {k: v for k, v in validate_pipeline(cfg, source).items() if k in set(cfg.stages)}
    with held(cfg.output_dir):
        return _run_stages(cfg, configs)


def _run_stages(cfg: DemoConfig, configs: dict) -> dict:
    results: dict = {}
    wanted = set(cfg.stages)
    if "corpus" in configs:
        results["corpus"] = _run_corpus_stage(configs["corpus"])
    if "train" in configs:
        results["train"] = _run_train_stage(configs["train"])
    if "merge" in configs:
        results["merge"] = _run_merge_stage(configs["merge"])
    if "base" in wanted:
        results["base"] = _run_base_model_stage(cfg)
    if "eval" in wanted and cfg.eval.enabled:
        results["eval"] = _run_eval_stage(cfg)
    if "report" in wanted:
        from definemed.report.build import build_report

        dirs = [cfg.output_dir / d for d in ("eval", "train", "merge", "corpus", "base-model")
                if (cfg.output_dir / d / "manifest.json").exists()]
        if dirs:
            path = build_report(dirs, cfg.output_dir / "report.html", title="definemed: DeFineMed in miniature")
            out.print(f"[bold]Report:[/] {escape(str(path))}")
    return results


def _eval_models(cfg: DemoConfig) -> dict[str, str]:
    """label → model reference: the base model, the CPT model and the chosen merge points that exist."""
    from definemed.models import resolve_model

    models = {"base": str(resolve_model(cfg.model))}
    cpt = cfg.output_dir / "train" / "final"
    if (cpt / "config.json").exists():
        models["cpt"] = str(cpt)
    for point in cfg.eval_merged:
        folder = cfg.output_dir / "merge" / point
        if (folder / "config.json").exists():
            models[f"merged-{point}"] = str(folder)
    return models


def _cpt_of_instruct(cfg: DemoConfig) -> bool:
    """Did this run continually pre-train the very model that the merge uses as instruct parent
    (the demo: no base sibling of the bundled model exists), rather than its base sibling?"""
    configs = stage_configs(cfg)
    train, merge = configs.get("train"), configs.get("merge")
    if train is None:
        return False
    instruct = merge.models.instruct if merge is not None and merge.models is not None else cfg.model
    return train.model == instruct  # as written in the configs: resolving a hub id would download it


def _run_eval_stage(cfg: DemoConfig) -> dict:
    from definemed.eval.study import study_notes, study_rows, study_table
    from definemed.eval.suite import run_suite
    from definemed.runs import atomic_write_json, read_json

    console.rule("[bold]Eval: base vs CPT vs merged")
    models = _eval_models(cfg)
    folder = cfg.output_dir / "eval"
    suite_cfg = cfg.eval.model_copy(update={"system_prompt": cfg.eval.system_prompt or cfg.system_prompt,
                                            "seed": cfg.seed})
    from definemed.runlock import held

    with held(folder):  # one lock for all four evaluations (each also takes it, re-entrantly)
        metrics = run_suite(suite_cfg, models, folder)
    train_metrics = cfg.output_dir / "train" / "metrics.json"
    labels = list(models)
    sweep = cfg.output_dir / "merge" / "sweep.json"
    skipped = metrics["pairwise"].get("skipped")  # one model or no judge: no pairwise (said in the notes)
    rows = study_rows(read_json(train_metrics) if train_metrics.exists() else None, metrics,
                      read_json(folder / "failures.json"), None if skipped else read_json(folder / "pairwise.json"),
                      labels, read_json(sweep) if sweep.exists() else None)
    notes = study_notes(_cpt_of_instruct(cfg)) + ([f"No pairwise comparison: {skipped}."] if skipped else [])
    atomic_write_json(folder / "study.json", {"labels": labels, "rows": rows, "notes": notes})
    out.print(study_table(rows, labels, notes))
    return metrics


def _run_base_model_stage(cfg: DemoConfig) -> dict:
    console.rule("[bold]The bundled base model: perplexity vs a random-init control, chat answers")
    with RunDir(cfg.output_dir / "base-model", stage="demo") as run:
        return _base_model(cfg, run)


def _base_model(cfg: DemoConfig, run: RunDir) -> dict:
    from definemed.eval.perplexity import perplexity
    from definemed.models import load_causal_lm, random_init_like, resolve_model
    from definemed.models.chat import GenerationSettings, build_messages, generate_chat

    own = cfg.model_dump(mode="json", include={"model", "seed", "system_prompt", "questions", "max_new_tokens",
                                               "ppl_max_docs", "ppl_max_length"})  # this stage's settings only
    if (done := run.reuse(own)) is not None:
        return done
    run.start(own, seed=cfg.seed)
    console.print("[bold]1/3[/] bundled model → Hugging Face checkpoint (cached after the first run)")
    model_path = resolve_model(cfg.model)
    model, tok = load_causal_lm(model_path)
    control = random_init_like(model_path, seed=cfg.seed).to(model.device)

    console.print("[bold]2/3[/] perplexity on held-out German test documents: bundled model vs random-init control")
    from definemed.data.sample import heldout_texts

    texts = heldout_texts(cfg.ppl_max_docs)
    ppl: dict[str, dict] = {}
    for label, m in (("bundled", model), ("random_init", control)):
        for domain, docs in texts.items():
            with progress_bar(f"ppl {label}/{domain}", total=None) as advance:
                ppl[f"{label}/{domain}"] = perplexity(m, tok, docs, max_length=cfg.ppl_max_length, progress=advance)
    table = Table(title="Held-out perplexity (lower is better)")
    for col in ("model", "medical", "general"):
        table.add_column(col, justify="right" if col != "model" else "left")
    for label in ("bundled", "random_init"):
        table.add_row(label, f"{ppl[label + '/medical']['ppl']:.1f}", f"{ppl[label + '/general']['ppl']:.1f}")
    out.print(table)

    console.print("[bold]3/3[/] greedy chat answers of the bundled model (a 135M English-first model: weak German)")
    settings = GenerationSettings(max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    answers = generate_chat(model, tok, [build_messages(q, cfg.system_prompt) for q in cfg.questions], settings)
    for q, a in zip(cfg.questions, answers):
        out.print(f"[bold]Frage:[/] {escape(q)}\n[bold]Antwort:[/] {escape(a['text'])}\n")
    metrics = {"perplexity": ppl, "answers": [{"question": q, **a} for q, a in zip(cfg.questions, answers)]}
    run.finish(metrics, outputs={"model": model_path})
    out.print(f"Run directory: {run.path}", markup=False)
    return metrics

