"""Command line: one sub-command group per stage. Thin: parsing and printing, no logic."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from definemed.errors import UserError

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
eval_app = typer.Typer(help="Evaluate models: perplexity (more to come: MCQ, pairwise, failure modes).",
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


@corpus_app.command("validate")
def corpus_validate(config: Path = typer.Argument(..., help="Corpus YAML to check.")):
    """Check a corpus config without running it (e.g. a Slurm config on a laptop)."""
    from definemed.config import load_config
    from definemed.console import out
    from definemed.corpus.config import CorpusConfig

    cfg = load_config(CorpusConfig, config)
    out.print(f"[green]ok[/]: {config} ({cfg.executor.kind} executor, {cfg.executor.tasks} tasks, "
              f"annotator {cfg.annotate.annotator.backend.kind}:{cfg.annotate.annotator.backend.model})")


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
    out.print(f"[green]ok[/]: {config} ({cfg.model}, {cfg.max_steps} steps × {cfg.micro_batch_size}×"
              f"{cfg.grad_accum_steps} sequences of {cfg.seq_len} per process, {cfg.dtype})")


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

    out.print(str(ensure_bundled_model()))


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
    out.print(res["text"])


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
    """Token-weighted perplexity of a model on documents."""
    from definemed.console import out, progress_bar
    from definemed.data.io import read_jsonl, read_parquet_rows
    from definemed.eval.perplexity import perplexity
    from definemed.models import load_causal_lm

    if not data.exists():
        raise UserError(f"data not found: {data}")
    rows = read_jsonl(data) if data.suffix == ".jsonl" else read_parquet_rows(data, columns=["text"])
    if rows and "text" not in rows[0]:
        raise UserError(f"{data}: no 'text' column")
    m, tok = load_causal_lm(model)
    with progress_bar("perplexity", total=None) as advance:
        res = perplexity(m, tok, [r["text"] for r in rows[:max_docs]], max_length=max_length, progress=advance)
    out.print_json(data=res)


@app.command("demo")
def demo(
    config: Optional[Path] = typer.Option(None, "--config", "-c", help="Demo YAML (default: built-in settings)."),
    output_dir: Optional[Path] = typer.Option(None, help="Where run directories go (default runs/demo)."),
    overrides: Optional[List[str]] = SetOpt,
):
    """Run the whole chain end to end on the bundled model and the sample data."""
    from definemed.config import load_config, validate_config, apply_overrides
    from definemed.demo import DemoConfig, run_demo

    cfg = load_config(DemoConfig, config, overrides) if config else \
        validate_config(DemoConfig, apply_overrides({}, overrides), "--set")
    if output_dir is not None:
        cfg.output_dir = output_dir
    run_demo(cfg)


def main() -> None:
    try:
        app()
    except UserError as err:
        from definemed.console import console

        console.print(f"[bold red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
