"""Record schemas of the project's data files (web-document labels, MCQ items, instructions).

These are the contracts between the sample data, the corpus stage and the eval stage.
"""

from __future__ import annotations

from typing import Annotated, Literal, Optional, Union

from pydantic import Field, model_validator

from definemed.config import StrictModel

# The columns of FineWeb2 (HuggingFaceFW/fineweb-2) parquet files, in their order.
FINEWEB2_COLUMNS = ("text", "id", "dump", "url", "date", "file_path", "language", "language_score",
                    "language_script", "minhash_cluster_size", "top_langs")

Score = Annotated[int, Field(ge=0, le=5)]


class DocLabel(StrictModel):
    """Gold label of one sample web document (by careful human-style reading)."""

    id: str
    key: str
    medical: Score
    edu: Score
    split: Literal["train", "validation", "test"]
    kind: str
    lang: Literal["de", "en", "mixed"]
    near_duplicate_of: Optional[str] = None  # id of the document this one copies
    notes: str = ""


class MCQItem(StrictModel):
    id: str
    subject: str
    question: str = Field(min_length=5)
    choices: list[str] = Field(min_length=2, max_length=6)
    answer: int = Field(ge=0)
    explanation: str = ""
    difficulty: Literal["easy", "medium", "hard"] = "medium"

    @model_validator(mode="after")
    def _answer_in_range(self):
        if self.answer >= len(self.choices):
            raise ValueError(f"answer {self.answer} out of range for {len(self.choices)} choices")
        if len(set(self.choices)) != len(self.choices):
            raise ValueError("duplicate choices")
        return self


# --- verifiable format constraints (IFEval-style), one shape per type -------------------------
class _N(StrictModel):
    n: int = Field(ge=1)


class BulletCount(_N):
    type: Literal["bullet_count"]


class NumberedList(_N):
    type: Literal["numbered_list"]


class MaxWords(_N):
    type: Literal["max_words"]


class MinWords(_N):
    type: Literal["min_words"]


class MaxSentences(_N):
    type: Literal["max_sentences"]


class Language(StrictModel):
    type: Literal["language"]
    lang: str


class IncludeKeywords(StrictModel):
    type: Literal["include_keywords"]
    keywords: list[str] = Field(min_length=1)


class ExcludeKeywords(StrictModel):
    type: Literal["exclude_keywords"]
    keywords: list[str] = Field(min_length=1)


class StartsWith(StrictModel):
    type: Literal["starts_with"]
    text: str


class EndsWith(StrictModel):
    type: Literal["ends_with"]
    text: str


class NoCommas(StrictModel):
    type: Literal["no_commas"]


class Sections(_N):
    type: Literal["sections"]
    marker: str


Constraint = Annotated[
    Union[BulletCount, NumberedList, MaxWords, MinWords, MaxSentences, Language, IncludeKeywords,
          ExcludeKeywords, StartsWith, EndsWith, NoCommas, Sections],
    Field(discriminator="type"),
]


class InstructionItem(StrictModel):
    id: str
    category: str
    instruction: str = Field(min_length=5)
    input: str = ""
    reference: Optional[str] = None
    must_refer_to_professional: bool = False
    constraints: list[Constraint] = Field(default_factory=list)
