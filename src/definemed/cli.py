"""Command line: one sub-command group per stage. Thin: parsing and printing, no logic."""

from __future__ import annotations

import signal
import sys
from pathlib import Path
from typing import List, Optional

import typer
from rich.markup import escape

from definemed.errors import Terminated, UserError

app = typer.Typer(
    name="definemed",
    help="Build a German (or any language/domain) medical LLM from open web data: "
         "corpus → continual pre-training → merge → eval → report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
model_app = typer.Typer(help="The bundled model and any other model reference: convert, inspect, chat.",
                        no_args_is_help=True)
data_app = typer.Typer(help="The project's own sample data: summary and validation.", no_args_is_help=True)
eval_app = typer.Typer(help="Evaluate models: perplexity, multiple choice, answer generation, lm-eval export, "
                              "pairwise judging, failure modes, prompt-injection resistance.",
                       no_args_is_help=True)
corpus_app = typer.Typer(help="FineMed-de corpus: FineWeb2 → prefilters → LLM annotation → classifier → "
                                "filter → near-dedup → sharded parquet with statistics.", no_args_is_help=True)
app.add_typer(corpus_app, name="corpus")
train_app = typer.Typer(help="Continual pre-training: packed sequences, replay, warmup+cosine/WSD, exact resume; "
                               "single process or under `accelerate launch` (DDP/FSDP).", no_args_is_help=True)
app.add_typer(train_app, name="train")
merge_app = typer.Typer(help="Merge the CPT model back with its instruct parent with mergekit (SLERP, linear, TIES, "
                               "DARE-TIES, task arithmetic), one model per sweep point, plus a comparison table.",
                        no_args_is_help=True)
app.add_typer(merge_app, name="merge")
app.add_typer(model_app, name="model")
app.add_typer(data_app, name="data")
app.add_typer(eval_app, name="eval")

SetOpt = typer.Option(None, "--set", help="Override a config field, e.g. --set seed=3 (repeatable).")


@corpus_app.command("run")
def corpus_run(
    config: Path = typer.Argument(..., help="Corpus YAML, e.g. configs/demo-corpus.yaml."),
    overrides: Optional[List[str]] = SetOpt,
):
    """Build the corpus. Rerunning resumes an interrupted run; a finished one is a no-op."""
    from definemed.config import load_config
    from definemed.corpus.config import CorpusConfig
    from definemed.corpus.pipeline import run_corpus
    from definemed.corpus.summary import print_summary

    cfg = load_config(CorpusConfig, config, overrides)
    print_summary(run_corpus(cfg), cfg)


@corpus_app.command("card")
def corpus_card(run_dir: Path = typer.Argument(..., help="A finished corpus run directory.")):
    """(Re)write the dataset card (README.md, Hugging Face style) of a finished corpus run:
    sources and licences, every filter with its counts, PII policy and counts, opt-outs,
    decontamination per benchmark, annotator and classifier versions."""
    from definemed.console import out
    from definemed.corpus.card import write_dataset_card
    from definemed.runs import RunDir

    if not (run_dir / "manifest.json").exists() or not RunDir(run_dir, "corpus").is_finished():
        raise UserError(f"{run_dir}: not a finished corpus run directory (no finished manifest.json)")
    out.print(f"dataset card: {write_dataset_card(run_dir)}", markup=False)


@corpus_app.command("validate")
def corpus_validate(config: Path = typer.Argument(..., help="Corpus YAML to check.")):
    """Check a corpus config without running it (e.g. a Slurm config on a laptop)."""
    from definemed.config import load_config
    from definemed.console import out
    from definemed.corpus.config import CorpusConfig

    cfg = load_config(CorpusConfig, config)
    out.print(f"[green]ok[/]: " + escape(f"{config} ({cfg.executor.kind} executor, {cfg.executor.tasks} tasks, "
              f"annotator {cfg.annotate.annotator.backend.kind}:{cfg.annotate.annotator.backend.model})"))


@train_app.command("run")
def train_run(
    config: Path = typer.Argument(..., help="Training YAML, e.g. configs/demo-train.yaml."),
    overrides: Optional[List[str]] = SetOpt,
):
    """Train. Rerunning resumes from the last checkpoint; a finished run is a no-op."""
    from definemed.config import load_config
    from definemed.train.config import TrainConfig
    from definemed.train.loop import train
    from definemed.train.summary import print_train_summary

    cfg = load_config(TrainConfig, config, overrides)
    print_train_summary(train(cfg))


@train_app.command("validate")
def train_validate(config: Path = typer.Argument(..., help="Training YAML to check.")):
    """Check a training config without running it (e.g. a GPU-cluster config on a laptop)."""
    from definemed.config import load_config
    from definemed.console import out
    from definemed.train.config import TrainConfig

    cfg = load_config(TrainConfig, config)
    out.print("[green]ok[/]: " + escape(f"{config} ({cfg.model}, {cfg.max_steps} steps × {cfg.micro_batch_size}×"
              f"{cfg.grad_accum_steps} sequences of {cfg.seq_len} per process, {cfg.dtype})"))


@merge_app.command("run")
def merge_run(
    config: Path = typer.Argument(..., help="Merge YAML, e.g. configs/demo-merge.yaml."),
    overrides: Optional[List[str]] = SetOpt,
):
    """Pre-check, merge every sweep point, verify and score the merged models."""
    from definemed.merge.cli_glue import merge_run as run

    run(config, overrides or [])


@merge_app.command("validate")
def merge_validate(config: Path = typer.Argument(..., help="Merge YAML to check.")):
    """Check a merge config without running it."""
    from definemed.merge.cli_glue import merge_validate as validate

    validate(config)


@model_app.command("convert")
def model_convert():
    """Convert the bundled SmolLM2-135M-Instruct GGUF into a cached Hugging Face checkpoint."""
    from definemed.console import out
    from definemed.models.bundled import ensure_bundled_model

    out.print(str(ensure_bundled_model()), markup=False)


@model_app.command("chat")
def model_chat(
    question: str = typer.Argument(..., help="The user message."),
    model: str = typer.Option("smollm2-135m-instruct", help="Model: bundled name, local folder or hub id."),
    system: Optional[str] = typer.Option(None, help="Optional system prompt."),
    max_new_tokens: int = typer.Option(128, min=1),
    temperature: float = typer.Option(0.0, min=0.0, help="0 = greedy."),
):
    """Answer one chat message with a local model."""
    from definemed.console import out
    from definemed.models import load_causal_lm
    from definemed.models.chat import GenerationSettings, build_messages, generate_chat

    m, tok = load_causal_lm(model)
    res = generate_chat(m, tok, [build_messages(question, system)],
                        GenerationSettings(max_new_tokens=max_new_tokens, temperature=temperature))[0]
    out.print(res["text"], markup=False, highlight=False)  # model output: never rich markup


@model_app.command("export-gguf")
def model_export_gguf(
    model_dir: str = typer.Argument(..., help="Checkpoint folder (CPT final/, a merge point) or the bundled name."),
    output: Path = typer.Option(..., "-o", "--output", help="The .gguf file to write."),
    dtype: str = typer.Option("f16", help="f16, f32 or q8_0."),
):
    """Export a Llama/Mistral/Qwen2 checkpoint to one GGUF file for llama.cpp and Ollama."""
    from definemed.console import out
    from definemed.models.gguf_export import export_gguf

    out.print(str(export_gguf(model_dir, output, dtype)), markup=False)


@data_app.command("info")
def data_info():
    """Validate the sample data and print its counts."""
    from definemed.console import out
    from definemed.demo import sample_summary_table

    out.print(sample_summary_table())


@eval_app.command("perplexity")
def eval_perplexity(
    data: Path = typer.Argument(..., help="Parquet file/folder or JSONL file with a 'text' column."),
    model: str = typer.Option("smollm2-135m-instruct", help="Model: bundled name, local folder or hub id."),
    max_docs: int = typer.Option(100, min=1),
    max_length: int = typer.Option(512, min=16),
):
    """Token-weighted perplexity of a model on documents. Documents that a definemed-trained (or
    merged) model saw in training are excluded and counted (heldout_overlap_docs)."""
    from definemed.console import out, progress_bar
    from definemed.data.heldout import exclude_training, model_training_index
    from definemed.data.sources import TextSource, load_docs
    from definemed.eval.perplexity import perplexity
    from definemed.models import load_causal_lm, resolve_model

    docs = load_docs(TextSource(path=str(data)))
    path = resolve_model(model)
    docs, overlap = exclude_training(docs, model_training_index(path))
    m, tok = load_causal_lm(path)
    with progress_bar("perplexity", total=None) as advance:
        res = perplexity(m, tok, [d.text for d in docs[:max_docs]], max_length=max_length, progress=advance)
    out.print_json(data={**res, "heldout_overlap_docs": overlap})


@eval_app.command("mcq")
def eval_mcq(
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="Model (bundled name, folder, hub id or "
                                              "label=ref); repeat for several."),
    data: Optional[Path] = typer.Option(None, help="MCQ JSONL (project, MMLU or MedQA layout)."),
    shots: Optional[int] = typer.Option(None, min=0, help="Few-shot examples per item (default 0)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Eval run directory, e.g. runs/eval/<name>."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML with MCQEvalConfig fields."),
    overrides: Optional[List[str]] = SetOpt,
):
    """Multiple-choice accuracy by option log-likelihood (acc, acc_norm, 95% CIs, per subject)."""
    from definemed.console import out as stdout, progress_bar
    from definemed.eval.config import MCQEvalConfig, build_config
    from definemed.eval.mcq import run_mcq

    cfg = build_config(MCQEvalConfig, config, {"models": model, "data": data, "shots": shots, "output_dir": out},
                       overrides)
    res = run_mcq(cfg, progress_factory=progress_bar)
    for label, r in res["models"].items():
        stdout.print(escape(label) + f": acc {r['acc']['mean']:.3f} [{r['acc']['ci_low']:.3f}, {r['acc']['ci_high']:.3f}]  "
                     f"acc_norm {r['acc_norm']['mean']:.3f} [{r['acc_norm']['ci_low']:.3f}, "
                     f"{r['acc_norm']['ci_high']:.3f}]  n={r['acc']['n']}")


@eval_app.command("export-lmeval")
def eval_export_lmeval(
    data: Path = typer.Option(..., help="MCQ JSONL (project, MMLU or MedQA layout)."),
    out: Path = typer.Option(..., "--out", help="Folder for the task YAML and its data."),
    task_name: str = typer.Option(..., help="lm-eval task name."),
    shots: int = typer.Option(0, min=0),
    fewshot_data: Optional[Path] = typer.Option(None, help="Few-shot pool (default: the set itself)."),
    target: str = typer.Option("text", help="Option continuation: 'text' or 'letter'."),
):
    """Write an lm-evaluation-harness task (YAML + JSONL) whose prompts equal `definemed eval mcq`'s."""
    from definemed.console import out as stdout
    from definemed.eval.lmeval_export import export_task

    path = export_task(data, out, task_name, shots=shots, fewshot_data=fewshot_data, target=target)
    stdout.print(escape(f"{path}\nrun: lm_eval --model hf --model_args pretrained=MODEL --tasks {task_name} "
                 f"--include_path {out}"))


@eval_app.command("generate")
def eval_generate(
    model: Optional[List[str]] = typer.Option(None, "--model", "-m", help="Model (local ref or served name; "
                                              "label=ref allowed); repeat for several."),
    data: Optional[Path] = typer.Option(None, help="Instruction JSONL (InstructionItem records)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Eval run directory, e.g. runs/eval/<name>."),
    max_new_tokens: Optional[int] = typer.Option(None, min=1),
    temperature: Optional[float] = typer.Option(None, min=0.0, help="0 = greedy (default)."),
    base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible server; sets backend=openai."),
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="YAML with GenerateEvalConfig fields."),
    overrides: Optional[List[str]] = SetOpt,
):
    """Answers per model in <out>/answers/<model>.jsonl (cached; an interrupted run resumes)."""
    from definemed.console import out as stdout, progress_bar
    from definemed.eval.config import GenerateEvalConfig, build_config
    from definemed.eval.generate import run_generate

    cfg = build_config(GenerateEvalConfig, config, {
        "models": model, "data": data, "output_dir": out, "max_new_tokens": max_new_tokens,
        "temperature": temperature, "base_url": base_url, "backend": "openai" if base_url else None}, overrides)
    for label, m in run_generate(cfg, progress_factory=progress_bar).items():
        failed = (f", FAILED {m['failed']} ({', '.join(f'{k} {v}' for k, v in sorted(m['failed_reasons'].items()))};"
                  f" rerun to retry)" if m["failed"] else "")
        stdout.print(escape(label) + f": {m['items']} answers ({m['generated_now']} generated now{failed}), "
                     f"hit the token limit {m['hit_limit']['mean']:.0%}")


@eval_app.command("pairwise")
def eval_pairwise(
    answers: List[Path] = typer.Option(..., "--answers", help="Answer file <run>/answers/<model>.jsonl; "
                                       "repeat (≥ 2). The first is model A of each pair."),
    out: Path = typer.Option(..., "--out", help="Eval run directory, e.g. runs/eval/<name>."),
    judge_model: Optional[str] = typer.Option(None, help="Local judge: bundled name, folder or hub id."),
    judge_base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible judge server, e.g. "
                                                 "http://localhost:8000/v1 (vLLM)."),
    judge_served_model: Optional[str] = typer.Option(None, help="Model name on the judge server."),
    judge_api_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable holding the API key."),
    mode: str = typer.Option("loglik", help="generate (JSON verdict) or loglik (probabilities of A/B/C)."),
    reference_guided: bool = typer.Option(False, "--reference-guided", help="Also judge with the reference "
                                          "answer in the prompt (reported as a second judge)."),
    embedding_judge: bool = typer.Option(False, "--embedding-judge", help="Also judge by e5 similarity to the "
                                         "reference."),
    max_items: Optional[int] = typer.Option(None, min=1, help="Judge only the first N common items."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
):
    """Judge answers pairwise in both orders: win-rates, LC win-rate, position consistency,
    Bradley–Terry (≥ 3 models), agreement between judges → <out>/pairwise.json."""
    from definemed.console import out as stdout
    from definemed.eval.pairwise import PairwiseConfig
    from definemed.eval.pairwise_run import judge_backend_config, run_pairwise, summary_lines

    if mode not in ("generate", "loglik"):
        raise UserError(f"--mode must be generate or loglik, got {mode!r}")
    cfg = PairwiseConfig(answers=answers, output_dir=out, mode=mode, reference_guided=reference_guided,
                         embedding_judge=embedding_judge, max_items=max_items, seed=seed,
                         judge=judge_backend_config(judge_model, judge_base_url, judge_served_model, judge_api_key_env))
    for line in summary_lines(run_pairwise(cfg)):
        stdout.print(line, highlight=False, markup=False)


@eval_app.command("failures")
def eval_failures(
    answers: List[Path] = typer.Option(..., "--answers", help="Answer file <run>/answers/<model>.jsonl; repeatable."),
    out: Path = typer.Option(..., "--out", help="Eval run directory, e.g. runs/eval/<name>."),
    baseline: Optional[str] = typer.Option(None, help="Model label whose answer lengths the others are compared to."),
    instructions: Optional[Path] = typer.Option(None, help="Instruction JSONL with the constraints "
                                                "(default: the sample set)."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
):
    """Failure modes: language mixing, verbosity, repetition, template leakage, instruction following
    → <out>/failures.json."""
    from definemed.console import out as stdout
    from definemed.eval.failures_run import FailuresConfig, run_failures

    cfg = FailuresConfig(answers=answers, output_dir=out, baseline=baseline, instructions=instructions, seed=seed)
    for label, m in run_failures(cfg).items():
        stdout.print(f"{label}: " + ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}"
                                              for k, v in m.items()), markup=False)


@eval_app.command("injection")
def eval_injection(
    out: Path = typer.Option(..., "--out", help="Eval run directory, e.g. runs/eval/<name>."),
    target: str = typer.Option("judge", help="judge (pairwise judge) or annotator (corpus annotator)."),
    judge_model: Optional[str] = typer.Option(None, help="Local model under test: bundled name, folder or hub id."),
    judge_base_url: Optional[str] = typer.Option(None, help="OpenAI-compatible server, e.g. http://localhost:8000/v1."),
    judge_served_model: Optional[str] = typer.Option(None, help="Model name on the server."),
    judge_api_key_env: str = typer.Option("OPENAI_API_KEY", help="Environment variable holding the API key."),
    mode: str = typer.Option("loglik", help="generate (JSON) or loglik (option probabilities)."),
    attacks: Optional[Path] = typer.Option(None, help="Attack JSONL (default: "
                                           "data/sample/eval/injection_attacks.jsonl)."),
    answers: Optional[List[Path]] = typer.Option(None, "--answers", help="Judge: two answer files; the attack goes "
                                                 "into the second (default: sample references vs a non-answer)."),
    max_items: int = typer.Option(6, min=1, help="Items (judge) or documents (annotator)."),
    max_attacks: Optional[int] = typer.Option(None, min=1, help="Use only the first N attacks."),
    seed: int = typer.Option(0, help="Bootstrap seed."),
):
    """Prompt-injection resistance: verdict/score flip rate with and without injected text, per
    attack kind, with bootstrap CIs → <out>/injection.json."""
    from definemed.console import out as stdout, progress_bar
    from definemed.eval.injection_eval import InjectionEvalConfig, run_injection, summary_lines
    from definemed.eval.pairwise_run import judge_backend_config

    if mode not in ("generate", "loglik") or target not in ("judge", "annotator"):
        raise UserError(f"--mode must be generate or loglik and --target judge or annotator, got {mode!r}, {target!r}")
    backend_cfg = judge_backend_config(judge_model, judge_base_url, judge_served_model, judge_api_key_env)
    if backend_cfg is None:
        raise UserError("no model under test: give --judge-model or --judge-base-url")
    cfg = InjectionEvalConfig(target=target, backend=backend_cfg, mode=mode, attacks=attacks, answers=answers or [],
                              max_items=max_items, max_attacks=max_attacks, seed=seed, output_dir=out)
    annotator = None
    if target == "annotator":  # built here: the eval stage does not import the corpus stage
        from definemed.corpus.annotator import Annotator, AnnotatorConfig
        from definemed.llm import connect_backend

        annotator = Annotator(AnnotatorConfig(mode=mode, backend=backend_cfg), out / "injection_cache.sqlite",
                              backend=connect_backend(backend_cfg))  # a server is checked before any attack
    for line in summary_lines(run_injection(cfg, annotator=annotator, progress_factory=progress_bar)):
        stdout.print(line, highlight=False, markup=False)


@app.command("report")
def report(
    run_dirs: List[Path] = typer.Argument(..., help="Run directories: eval runs (runs/eval/<name>), optionally "
                                          "train, merge, corpus or demo runs."),
    output: Path = typer.Option(..., "--output", "-o", help="The HTML file to write, e.g. report.html."),
    title: str = typer.Option("definemed report", "--title", help="Page title."),
):
    """One self-contained HTML report (opens offline): MCQ, perplexity, pairwise judging, failure
    modes, example answers, training, merge sweep, corpus, and the exact configs."""
    from definemed.console import out as stdout
    from definemed.report.build import build_report

    stdout.print(f"report: {build_report(run_dirs, output, title)}", highlight=False, markup=False)


@app.command("pipeline")
def pipeline(
    config: Path = typer.Argument(..., help="Pipeline YAML (the demo's schema): stages, stage configs, eval."),
    check: bool = typer.Option(False, "--check", help="Only validate the pipeline and every stage config."),
    overrides: Optional[List[str]] = SetOpt,
):
    """Run any subset of the stages (corpus, train, merge, base, eval, report) from one YAML.
    Language and domain are configuration: a French legal or Dutch medical run needs only new
    stage configs (prompts, prefilter word lists, eval sets). Finished stages are reused."""
    from definemed.config import load_config
    from definemed.demo import PipelineConfig, run_demo, validate_pipeline

    cfg = load_config(PipelineConfig, config, overrides)
    if check:  # the very check a run makes before its first stage
        from definemed.console import out

        stages = validate_pipeline(cfg, str(config))
        out.print("[green]ok[/]: " + escape(f"{config}: stages {', '.join(cfg.stages)}; stage configs valid: "
                                            f"{', '.join(stages) or 'none'}"))
        return
    run_demo(cfg, str(config))


@app.command("demo")
def demo(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Demo YAML (default: built-in settings)."),
    output_dir: Optional[Path] = typer.Option(None, help="Where run directories go (default runs/demo)."),
    overrides: Optional[List[str]] = SetOpt,
):
    """Run the whole chain end to end on the bundled model and the sample data."""
    from definemed.config import load_config, validate_config, apply_overrides
    from definemed.console import out
    from definemed.demo import DemoConfig, run_demo, sample_summary_table

    cfg = load_config(DemoConfig, config, overrides) if config else \
        validate_config(DemoConfig, apply_overrides({}, overrides), "--set")
    if output_dir is not None:
        cfg.output_dir = output_dir
    out.print(sample_summary_table())
    run_demo(cfg, str(config) if config else "--set")


def _terminate(signum, frame):
    raise Terminated(f"terminated by {signal.Signals(signum).name}")


def main() -> None:
    # SIGTERM becomes an exception: the running stage records "failed" and frees its folder
    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread (an embedding application): leave its handlers alone
        previous = None
    try:
        app()
    except UserError as err:
        from definemed.console import print_error

        print_error(" ".join(str(err).splitlines()))  # one line, user text verbatim (never rich markup)
        sys.exit(2)
    except Terminated as err:
        from definemed.console import print_error

        print_error(f"{err}: the run is recorded as failed; rerun the same command to resume")
        sys.exit(128 + signal.SIGTERM)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    main()
