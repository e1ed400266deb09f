"""Configs of the evaluations (MCQ log-likelihood, answer generation) and how the CLI builds them.

Precedence as everywhere: defaults < YAML file (``--config``) < explicit command-line options <
``--set field=value`` overrides.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional, TypeVar

import yaml
from pydantic import Field

from definemed.config import Dtype, Seed, StrictModel, apply_overrides, validate_config
from definemed.errors import UserError

M = TypeVar("M", bound=StrictModel)


class MCQEvalConfig(StrictModel):
    """Multiple-choice evaluation by the log-likelihood of each option (lm-evaluation-harness style)."""

    models: list[str] = Field(default_factory=lambda: ["smollm2-135m-instruct"], min_length=1)  # ref or label=ref
    data: Path
    output_dir: Path
    shots: int = Field(0, ge=0)
    fewshot_data: Optional[Path] = None  # shots come from this file (default: the eval set minus the item)
    target: Literal["text", "letter"] = "text"  # continuation " <option text>" or " <letter>"
    answer_prefix: str = "Antwort:"
    chat_template: bool = False  # plain prompt (as lm_eval --model hf) or the model's chat template
    system_prompt: Optional[str] = None  # chat_template only
    batch_size: int = Field(8, ge=1)  # items per forward pass
    share_prefix: bool = True  # score all options of an item in one packed row (context once)
    limit: Optional[int] = Field(None, ge=1)
    # with limit: "stratified" over subjects (seeded), or the file's "first" items as `lm_eval --limit` takes them
    subset: Literal["stratified", "first"] = "stratified"
    dtype: Dtype = "float32"
    trust_remote_code: bool = False
    seed: Seed = 0  # bootstrap resampling and the stratified subset
    n_boot: int = Field(2000, ge=100)


class GenerateEvalConfig(StrictModel):
    """Answers of one or more models to an instruction set, stored per model for judging."""

    models: list[str] = Field(default_factory=lambda: ["smollm2-135m-instruct"], min_length=1)
    data: Path
    output_dir: Path
    backend: Literal["local", "openai"] = "local"
    base_url: Optional[str] = None  # openai: e.g. http://localhost:8000/v1
    api_key_env: str = "OPENAI_API_KEY"
    concurrency: int = Field(8, ge=1)
    timeout_s: float = Field(120.0, gt=0)
    max_new_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0)  # 0 = greedy
    seed: Seed = 0
    chat_template: bool = True
    system_prompt: Optional[str] = None
    batch_size: int = Field(4, ge=1)
    limit: Optional[int] = Field(None, ge=1)
    dtype: Dtype = "float32"
    trust_remote_code: bool = False


def build_config(model: type[M], config_path: Optional[Path], options: dict[str, Any],
                 overrides: Optional[list[str]]) -> M:
    """YAML file, then the command-line options that were given (not None), then ``--set``."""
    data: dict[str, Any] = {}
    source = "command line"
    if config_path is not None:
        if not config_path.is_file():
            raise UserError(f"config file not found: {config_path}")
        try:
            loaded = yaml.safe_load(config_path.read_text(encoding="utf-8"))
        except yaml.YAMLError as err:
            raise UserError(f"{config_path}: invalid YAML: {getattr(err, 'problem', err)}") from None
        if loaded is not None and not isinstance(loaded, dict):
            raise UserError(f"{config_path}: expected a mapping of fields at the top level")
        data = loaded or {}
        source = str(config_path)
    for key, value in options.items():
        if value is not None and value != []:
            data[key] = [str(v) for v in value] if isinstance(value, list) else \
                str(value) if isinstance(value, Path) else value
    data = apply_overrides(data, overrides)
    return validate_config(model, data, source)
