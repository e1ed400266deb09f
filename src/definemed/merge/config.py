"""The merge stage's YAML config (pydantic).

One interpolation factor ``t`` means the same thing for every method: the **share of the
continually pre-trained (CPT) model**. ``t = 0`` is the instruct parent, ``t = 1`` the CPT model:

- slerp:            mergekit's base model is the instruct parent, ``t`` moves towards the CPT model;
- linear:           weights ``1 - t`` (instruct) and ``t`` (CPT);
- ties, dare_ties, task_arithmetic: task vectors against ``models.base`` (the common pre-trained
  model), weighted ``1 - t`` (instruct) and ``t`` (CPT), ``density`` kept per task vector.

``sweep`` lists the factors to try, one merged model each; without a sweep, ``parameters.t``
(slerp/linear) or ``parameters.weight`` (the others) gives the single point. ``mergekit`` embeds a
raw mergekit YAML config instead, passed to mergekit as written (one merged model, ``custom/``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, model_validator

from definemed.config import FieldError, Seed, StrictModel
from definemed.data.sources import TextSource

Method = Literal["slerp", "linear", "ties", "dare_ties", "task_arithmetic"]
TASK_VECTOR_METHODS = ("ties", "dare_ties", "task_arithmetic")
SPARSIFYING_METHODS = ("ties", "dare_ties")
DTYPES = ("float32", "bfloat16", "float16")
DEFAULT_DENSITY = 0.5
# Same default as the demo, so that merged models are judged under the demo's conditions.
DEFAULT_SYSTEM = "Du bist ein hilfreicher medizinischer Assistent. Antworte immer auf Deutsch."


class MergeModels(StrictModel):
    """Model references: bundled name, local folder or hub id (resolved by `resolve_model`)."""

    cpt: str = Field(description="the continually pre-trained model")
    instruct: str = Field(description="its instruct parent (chat template and tokenizer come from here)")
    base: Optional[str] = Field(None, description="common pre-trained base: ties, dare_ties, task_arithmetic")


class MergeParameters(StrictModel):
    t: Optional[float] = Field(None, ge=0, le=1, description="slerp/linear: share of the CPT model (no sweep)")
    weight: Optional[float] = Field(None, ge=0, le=1, description="ties/dare/task_arithmetic: CPT weight (no sweep)")
    density: Optional[float] = Field(None, gt=0, le=1, description="ties/dare_ties: share of each delta kept")


class MergeEvalConfig(StrictModel):
    """The sweep table: medical perplexity and instruction following of every merged model."""

    enabled: bool = True
    include_parents: bool = True  # also score the instruct and CPT parents (the table's end points)
    # The sweep's data comes from here, so a 7B sweep is scored on the user's own held-out set.
    # Documents that any parent was trained on (its definemed training index) are dropped and counted.
    heldout: Optional[TextSource] = Field(None, description="held-out domain documents for perplexity")
    instructions_data: Optional[Path] = Field(None, description="instruction JSONL (items with checkable "
                                              "constraints are used), e.g. data/sample/instructions_de/...")
    docs: int = Field(8, ge=1, description="at most this many held-out documents")
    max_length: int = Field(256, ge=16, description="perplexity window in tokens")
    instructions: int = Field(4, ge=1, description="sample instructions with checkable constraints")
    max_new_tokens: int = Field(96, ge=1)
    system_prompt: Optional[str] = DEFAULT_SYSTEM
    batch_size: int = Field(4, ge=1)

    @model_validator(mode="after")
    def _data_given(self):
        if self.enabled and (self.heldout is None or self.instructions_data is None):
            missing = [k for k in ("heldout", "instructions_data") if getattr(self, k) is None]
            raise FieldError(missing, f"the sweep table needs eval.{' and eval.'.join(missing)} (your held-out "
                             "documents and instruction set), or eval.enabled: false")
        return self


class MergeConfig(StrictModel):
    name: str = "merge"
    output_dir: Path = Path("runs/merge/demo")
    seed: Seed = 0  # mergekit's random seed (DARE drops parameters at random)
    method: Method = "slerp"
    models: Optional[MergeModels] = None
    parameters: MergeParameters = Field(default_factory=MergeParameters)
    sweep: list[float] = Field(default_factory=list)
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    # None: the tokenizers must be identical and the instruct parent's is copied. Otherwise
    # "instruct", "cpt", "base", "union" (mergekit's) or a model reference: mergekit builds it.
    tokenizer_source: Optional[str] = None
    mergekit: Optional[dict[str, Any]] = None
    eval: MergeEvalConfig = Field(default_factory=MergeEvalConfig)

    @model_validator(mode="after")
    def _consistent(self):
        if self.mergekit is not None:
            clash = sorted({"method", "parameters", "sweep", "tokenizer_source", "dtype"} & self.model_fields_set)
            if clash:
                raise FieldError(["mergekit", *clash], "mergekit (a raw mergekit config) cannot be combined with "
                                 f"{', '.join(clash)}: put them into the mergekit config")
            return self
        if self.models is None:
            raise FieldError("models", "models (cpt, instruct) is required unless a raw mergekit config is given")
        task_vectors = self.method in TASK_VECTOR_METHODS
        if task_vectors and not self.models.base:
            raise FieldError("models.base", f"method {self.method} needs models.base (the pre-trained model both "
                             "parents share)")
        if not task_vectors and self.models.base:
            raise FieldError(("models.base", "method"), f"models.base is only used by "
                             f"{', '.join(TASK_VECTOR_METHODS)}, not {self.method}")
        p = self.parameters
        if task_vectors and p.t is not None:
            raise FieldError("parameters.t", f"parameters.t is for slerp/linear; {self.method} uses "
                             "parameters.weight")
        if not task_vectors and p.weight is not None:
            raise FieldError("parameters.weight", f"parameters.weight is for {', '.join(TASK_VECTOR_METHODS)}; "
                             f"{self.method} uses parameters.t")
        if p.density is not None and self.method not in SPARSIFYING_METHODS:
            raise FieldError("parameters.density", f"parameters.density is for {', '.join(SPARSIFYING_METHODS)}, "
                             f"not {self.method}")
        single_name = "parameters.weight" if task_vectors else "parameters.t"
        single = p.weight if task_vectors else p.t
        if self.sweep and single is not None:
            raise FieldError(("sweep", single_name), "give either sweep or a single parameters.t/weight, not both")
        if not self.sweep and single is None:
            raise FieldError(("sweep", single_name), "give sweep (e.g. [0.3, 0.5, 0.7]) or parameters.t "
                             "(slerp/linear) / parameters.weight (ties, dare_ties, task_arithmetic)")
        for v in self.sweep:
            if not 0 <= v <= 1:
                raise FieldError("sweep", f"sweep value {v} is outside [0, 1]")
        labels = [point_label(v) for v in self.sweep]
        if len(set(labels)) != len(labels):
            raise FieldError("sweep", f"sweep has repeated values: {self.sweep}")
        return self

    def points(self) -> list[Optional[float]]:
        """The interpolation factors to merge at; [None] for a raw mergekit config."""
        if self.mergekit is not None:
            return [None]
        if self.sweep:
            return list(self.sweep)
        single = self.parameters.weight if self.method in TASK_VECTOR_METHODS else self.parameters.t
        return [single]

    def density(self) -> Optional[float]:
        if self.method not in SPARSIFYING_METHODS:
            return None
        return self.parameters.density if self.parameters.density is not None else DEFAULT_DENSITY


def point_label(t: Optional[float]) -> str:
    """Folder name of one sweep point: t0.3, t0.5 ...; ``custom`` for a raw mergekit config."""
    return "custom" if t is None else f"t{t:g}"
