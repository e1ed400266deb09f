"""The corpus stage's YAML config (pydantic): one file runs locally, on Slurm or on Ray."""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional

from pydantic import Field, FilePath, ValidationInfo, field_validator, model_validator

from definemed.config import FieldError, Seed, StrictModel
from definemed.corpus.annotator import AnnotatorConfig
from definemed.corpus.compliance import ComplianceConfig

GERMAN_FUNCTION_WORDS = (
    "der die das den dem des ein eine einen einem einer eines und oder aber nicht ist sind war waren wird "
    "werden wurde hat haben hatte mit von zu zum zur im in auf für bei nach aus an als auch sich es er sie "
    "wir ihr ich du man kann können soll sollte muss wenn dass wie was noch nur schon sehr mehr durch über "
    "unter vor um bis so dann diese dieser dieses kein keine").split()


class InputConfig(StrictModel):
    paths: list[str] = Field(min_length=1, description="folders/files: local, s3://, hf://datasets/...")
    format: Literal["parquet", "jsonl"] = "parquet"
    glob: Optional[str] = None  # e.g. "deu_Latn/train/*.parquet"
    limit: int = -1  # documents per task; -1 = all (datatrove's convention)
    # an input file that cannot be read (corrupt parquet, truncated .gz/.zst): stop with one line naming
    # it (fail), or skip it and count it in stats.json `input_bad_files` and the dataset card (skip)
    on_bad_file: Literal["skip", "fail"] = "fail"
    # held-out documents dropped right after the reader (corpus/heldout.py): an id list (.txt one per
    # line, .jsonl with `id`) and/or splits looked up in split_labels (JSONL with `id` and `split`)
    exclude_ids: Optional[FilePath] = None
    split_labels: Optional[FilePath] = None  # before exclude_split: its validator reads this field
    exclude_split: list[str] = Field(default_factory=list)

    @field_validator("limit")
    @classmethod
    def _limit(cls, v: int):
        # datatrove reads any negative limit as "all" and 0 as nothing: both would be blamed on the
        # prefilters ("no documents survived"), not on this field
        if v != -1 and v < 1:
            raise ValueError(f"{v} is not a number of documents: give a positive count, or -1 for all")
        return v

    @field_validator("exclude_ids")
    @classmethod
    def _id_file_kind(cls, v: Optional[Path]):
        if v is not None and v.suffix not in (".txt", ".jsonl"):
            raise ValueError(f"{v}: expected a .txt (one id per line) or .jsonl (with 'id') file")
        return v

    @field_validator("exclude_split")
    @classmethod
    def _split_needs_labels(cls, v: list[str], info: ValidationInfo):
        # a split_labels that failed its own validation is absent from info.data and reported already
        if v and "split_labels" in info.data and info.data["split_labels"] is None:
            raise ValueError("needs input.split_labels (a JSONL with id and split)")
        return v


class SlurmConfig(StrictModel):
    partition: str = "cpu"
    # sbatch's formats: minutes, minutes:seconds, hours:minutes:seconds, days-hours[:minutes[:seconds]]
    time: str = Field("24:00:00", pattern=r"^(\d+-\d+(:\d+){0,2}|\d+(:\d+){0,2})$")
    cpus_per_task: int = Field(1, ge=1)
    mem_per_cpu_gb: int = Field(2, ge=1)
    qos: Optional[str] = None
    venv_path: Optional[str] = None
    sbatch_args: dict[str, str] = Field(default_factory=dict)
    poll_s: float = Field(30.0, gt=0)  # how often the orchestrator looks at completion markers and job states
    max_wait_h: Optional[float] = Field(None, gt=0)  # overall deadline per wait; None: as long as the jobs live


class ExecutorConfig(StrictModel):
    kind: Literal["local", "slurm", "ray"] = "local"
    tasks: int = Field(2, ge=1)
    workers: int = Field(1, ge=1)  # concurrent local processes
    slurm: SlurmConfig = Field(default_factory=SlurmConfig)


class PrefilterConfig(StrictModel):
    language: Optional[str] = "deu"  # FineWeb2 `language` column; None keeps every language
    min_language_score: float = Field(0.65, ge=0, le=1)
    min_words: int = Field(50, ge=0)
    max_words: int = Field(100_000, ge=1)
    max_chars: int = Field(1_000_000, ge=1)  # larger documents are skipped and counted ("huge")
    function_words: list[str] = Field(default_factory=lambda: list(GERMAN_FUNCTION_WORDS))
    min_function_word_ratio: float = Field(0.08, ge=0, le=1)
    max_boilerplate_line_ratio: float = Field(0.35, ge=0, le=1)
    min_line_punct_ratio: float = Field(0.12, ge=0, le=1)  # FineWeb's value: menus, listings, tag clouds
    max_short_line_ratio: float = Field(0.67, ge=0, le=1)  # FineWeb's value: lines under 30 characters
    max_top_word_ratio: float = Field(0.12, ge=0, le=1)  # keyword stuffing
    max_duplicate_line_ratio: float = Field(0.3, ge=0, le=1)

    @model_validator(mode="after")
    def _word_range(self):
        if self.min_words > self.max_words:
            raise FieldError(("min_words", "max_words"), f"min_words ({self.min_words}) is above max_words "
                             f"({self.max_words}): every document would be dropped")
        return self


class AnnotateConfig(StrictModel):
    enabled: bool = True
    sample_size: int = Field(200, ge=1)  # documents annotated by the LLM (the study: ~260k)
    annotator: AnnotatorConfig = Field(default_factory=AnnotatorConfig)
    compare_modes: list[Literal["generate", "loglik"]] = Field(default_factory=list)
    compare_sample_size: int = Field(24, ge=1)  # documents annotated in each compare mode
    gold_labels: Optional[Path] = None  # JSONL with id, medical (and split) to measure agreement


class ClassifierConfig(StrictModel):
    kind: Literal["hashing", "embedding"] = "hashing"
    labels_from: Literal["annotator", "gold"] = "annotator"
    gold_labels: Optional[Path] = None  # needed for labels_from=gold and for held-out metrics
    target: str = "medical"
    positive_min_score: float = 3.0  # label >= this counts as positive (annotator scores may be fractional)
    max_chars: int = Field(3000, ge=100)
    n_features: int = Field(2**20, ge=1024)
    C: float = Field(4.0, gt=0)
    seed: Seed = 0


class FilterConfig(StrictModel):
    threshold: float = Field(0.5, ge=0, le=1)


class DedupConfig(StrictModel):
    enabled: bool = True
    n_grams: int = Field(5, ge=1)
    num_buckets: int = Field(14, ge=1)
    hashes_per_bucket: int = Field(8, ge=1)


class CorpusConfig(StrictModel):
    name: str = "finemed-de"
    output_dir: Path = Path("runs/corpus/finemed-de")
    seed: Seed = 0
    input: InputConfig
    executor: ExecutorConfig = Field(default_factory=ExecutorConfig)
    prefilter: PrefilterConfig = Field(default_factory=PrefilterConfig)
    annotate: AnnotateConfig = Field(default_factory=AnnotateConfig)
    classifier: ClassifierConfig = Field(default_factory=ClassifierConfig)
    filter: FilterConfig = Field(default_factory=FilterConfig)
    dedup: DedupConfig = Field(default_factory=DedupConfig)
    compliance: ComplianceConfig = Field(default_factory=ComplianceConfig)  # opt-outs, decontamination, PII
    tokenizer: Optional[str] = "smollm2-135m-instruct"  # token counts in the statistics; null = word counts
    token_counts: Literal["output", "all"] = "output"  # where tokens are counted (words are counted everywhere)
    output_shards: int = Field(1, ge=1)

    @model_validator(mode="after")
    def _check(self):
        if self.classifier.labels_from == "gold" and self.classifier.gold_labels is None:
            raise FieldError("classifier.gold_labels", "classifier.labels_from=gold needs classifier.gold_labels")
        criteria = self.annotate.annotator.prompt.criteria
        if self.classifier.labels_from == "annotator" and self.classifier.target not in criteria:
            # else a KeyError once the annotations (the expensive part) are done
            raise FieldError("classifier.target", f"'{self.classifier.target}' is not a criterion the annotator "
                             f"scores (annotate.annotator.prompt.criteria: {', '.join(criteria)})")
        if self.classifier.labels_from == "annotator" and not self.annotate.enabled:
            raise FieldError(("annotate.enabled", "classifier.labels_from"),
                             "classifier.labels_from=annotator needs annotate.enabled=true")
        return self
