"""An eval suite in one run directory: MCQ, answers, pairwise judging, failure modes.

What the demo and `definemed pipeline` run after merging: every model of `models`
(label → reference) on the same items, so the report can compare them side by side.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, model_validator

from definemed.config import FieldError, Seed, StrictModel


class SuiteConfig(StrictModel):
    enabled: bool = True
    mcq_data: Optional[Path] = None  # default: the sample MCQ set
    mcq_limit: Optional[int] = Field(80, ge=1)  # items (None = all)
    instructions: Optional[Path] = None  # default: the sample instruction set
    instructions_limit: Optional[int] = Field(24, ge=1)
    max_new_tokens: int = Field(96, ge=1)
    system_prompt: Optional[str] = None
    judge_model: Optional[str] = "smollm2-135m-instruct"  # local judge (weak: see its position consistency)
    judge_base_url: Optional[str] = None  # or an OpenAI-compatible judge server (vLLM), e.g. http://host:8000/v1
    judge_served_model: Optional[str] = None
    judge_api_key_env: str = "OPENAI_API_KEY"
    judge_mode: Literal["generate", "loglik"] = "loglik"
    pairwise_items: Optional[int] = Field(None, ge=1)
    baseline: Optional[str] = "base"  # label the others are compared to (verbosity ratio)
    seed: Seed = 0

    @model_validator(mode="after")
    def _judge_server(self):
        # checked here, not when judging starts (after MCQ and generation have run)
        if self.judge_base_url and not self.judge_served_model:
            raise FieldError("judge_served_model", "judge_base_url needs judge_served_model (the model name on "
                             "the server)")
        if self.judge_served_model and not self.judge_base_url:
            raise FieldError("judge_base_url", "judge_served_model needs judge_base_url (the judge server)")
        return self

    def input_problems(self) -> list[tuple[str, str]]:
        """(field, problem) for every input file named here that cannot be read; empty = fine."""
        problems = []
        for name in ("mcq_data", "instructions"):
            path = getattr(self, name)
            if path is not None and not path.exists():
                problems.append((name, f"file not found: {path}"))
            elif path is not None and not path.is_file():
                problems.append((name, f"not a file: {path}"))
        return problems


def pairwise_skip_reason(cfg: SuiteConfig, models: dict[str, str]) -> Optional[str]:
    """Why pairwise judging cannot run for these models (None: it can). The rest of the suite runs
    either way; the reason goes into the study's notes so the report says why there is no pairwise."""
    if len(models) < 2:
        return f"pairwise judging needs two models, this run evaluated one ({', '.join(models)})"
    if cfg.judge_model is None and cfg.judge_base_url is None:
        return "no judge configured (eval.judge_model and eval.judge_base_url are both null)"
    return None


def run_suite(cfg: SuiteConfig, models: dict[str, str], output_dir: Path) -> dict:
    """Run all four evaluations; returns {"mcq", "pairwise", "failures"} metrics. Pairwise judging
    is skipped where it cannot run (one model, no judge): its metrics are then {"skipped": reason}."""
    from definemed.console import console, progress_bar
    from definemed.data.sample import instructions_path, mcq_path
    from definemed.eval.config import GenerateEvalConfig, MCQEvalConfig
    from definemed.eval.failures_run import FailuresConfig, run_failures
    from definemed.eval.generate import run_generate
    from definemed.eval.mcq import run_mcq
    from definemed.eval.pairwise import PairwiseConfig
    from definemed.eval.pairwise_run import judge_backend_config, run_pairwise

    refs = [f"{label}={ref}" for label, ref in models.items()]
    console.print(f"[bold]eval 1/4[/] multiple choice ({cfg.mcq_limit or 'all'} items) by log-likelihood")
    mcq = run_mcq(MCQEvalConfig(models=refs, data=cfg.mcq_data or mcq_path(), output_dir=output_dir,
                                limit=cfg.mcq_limit, seed=cfg.seed), progress_factory=progress_bar)
    console.print(f"[bold]eval 2/4[/] answers to {cfg.instructions_limit or 'all'} instructions")
    run_generate(GenerateEvalConfig(models=refs, data=cfg.instructions or instructions_path(),
                                    output_dir=output_dir, max_new_tokens=cfg.max_new_tokens,
                                    limit=cfg.instructions_limit, system_prompt=cfg.system_prompt, seed=cfg.seed),
                 progress_factory=progress_bar)
    answers = [output_dir / "answers" / f"{label}.jsonl" for label in models]
    if (skip := pairwise_skip_reason(cfg, models)) is not None:
        console.print(f"[bold]eval 3/4[/] pairwise judging skipped: {skip}")
        pairwise: dict = {"skipped": skip}
    else:
        console.print("[bold]eval 3/4[/] pairwise judging, both orders")
        judge = judge_backend_config(cfg.judge_model if not cfg.judge_base_url else None, cfg.judge_base_url,
                                     cfg.judge_served_model, cfg.judge_api_key_env)
        pairwise = run_pairwise(PairwiseConfig(answers=answers, judge=judge, mode=cfg.judge_mode,
                                               max_items=cfg.pairwise_items, output_dir=output_dir, seed=cfg.seed))
    console.print("[bold]eval 4/4[/] failure modes")
    failures = run_failures(FailuresConfig(answers=answers, instructions=cfg.instructions,
                                           baseline=cfg.baseline if cfg.baseline in models else None,
                                           output_dir=output_dir, seed=cfg.seed))
    return {"mcq": mcq, "pairwise": pairwise, "failures": failures}
