"""The training stage's YAML config."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal, Optional

from pydantic import Field, model_validator

from definemed.config import FieldError, Seed, StrictModel
from definemed.data.sources import TextSource


class DataSource(TextSource):
    """A training (or held-out) document source: `TextSource` plus its share of the mixture."""

    weight: float = Field(1.0, gt=0)  # share of training sequences drawn from this source
    kind: Literal["domain", "replay"] = "domain"  # replay = general text against forgetting


# torch's AdamW accepts only 0 <= beta < 1 (and says so after the model is loaded)
Beta = Annotated[float, Field(ge=0, lt=1)]


class LoraConfig(StrictModel):
    r: int = Field(16, ge=1)  # peft refuses rank 0, and only once the model is loaded
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj",
                                                               "gate_proj", "up_proj", "down_proj"],
                                      min_length=1)


class TrainConfig(StrictModel):
    output_dir: Path = Path("runs/train/cpt")
    seed: Seed = 0
    model: str = "smollm2-135m-instruct"
    data: list[DataSource] = Field(min_length=1)
    # name -> source, e.g. medical, general; documents that are also in the training data (by id or
    # normalised text) are dropped and counted (metrics: heldout_overlap_docs)
    heldout: dict[str, TextSource] = Field(default_factory=dict)
    heldout_max_docs: int = Field(20, ge=1)
    heldout_max_length: int = Field(256, ge=16)
    seq_len: int = Field(512, ge=8)
    micro_batch_size: int = Field(4, ge=1)
    grad_accum_steps: int = Field(1, ge=1)
    max_steps: int = Field(100, ge=1)
    lr: float = Field(1e-4, gt=0)
    min_lr_ratio: float = Field(0.1, ge=0, le=1)
    warmup_steps: int = Field(10, ge=0)
    schedule: Literal["cosine", "wsd", "constant"] = "cosine"
    wsd_decay_fraction: float = Field(0.2, gt=0, le=1)  # WSD: share of steps spent decaying
    weight_decay: float = Field(0.1, ge=0)
    betas: tuple[Beta, Beta] = (0.9, 0.95)
    grad_clip: float = Field(1.0, gt=0)
    dtype: Literal["float32", "bfloat16"] = "float32"  # bf16 autocast; this CPU has no fast bf16
    gradient_checkpointing: bool = False
    freeze_embeddings: bool = False
    lora: Optional[LoraConfig] = None  # train LoRA adapters (peft) and merge them into the output
    cross_document_attention: bool = False  # False: block-diagonal mask, positions restart per document
    checkpoint_every: int = Field(25, ge=1)
    keep_last: int = Field(2, ge=1)
    log_every: int = Field(1, ge=1)
    tensorboard: bool = True
    trust_remote_code: bool = False

    @model_validator(mode="after")
    def _check(self):
        if self.warmup_steps >= self.max_steps and self.schedule != "constant":
            raise FieldError(("warmup_steps", "max_steps"), f"warmup_steps ({self.warmup_steps}) must be "
                             f"smaller than max_steps ({self.max_steps}) unless schedule is constant")
        return self
