"""Pipeline steps that apply the trained classifier at scale and keep documents above a threshold."""

from __future__ import annotations

from datatrove.data import Document, DocumentsPipeline
from datatrove.pipeline.base import PipelineStep
from datatrove.pipeline.filters.base_filter import BaseFilter
from datatrove.utils.batching import batched

SCORE_KEY = "medical_score"
HISTOGRAM_BINS = 10


class ClassifierScorer(PipelineStep):
    """Adds ``metadata[score_key]`` (probability of the positive class) in batches.

    The classifier is loaded lazily in each worker from its folder, so the step pickles small.
    """

    type = "🧠 SCORER"
    name = "doc classifier"

    def __init__(self, classifier_dir: str, score_key: str = SCORE_KEY, batch_size: int = 256):
        super().__init__()
        self.classifier_dir, self.score_key, self.batch_size = classifier_dir, score_key, batch_size
        self._clf = None

    def run(self, data: DocumentsPipeline, rank: int = 0, world_size: int = 1) -> DocumentsPipeline:
        from definemed.corpus.classifier import DocClassifier

        if self._clf is None:
            self._clf = DocClassifier.load(self.classifier_dir)
        for batch in batched(data, self.batch_size):
            with self.track_time("batch"):
                scores = self._clf.predict_proba([d.text for d in batch])
            for doc, s in zip(batch, scores):
                doc.metadata[self.score_key] = round(float(s), 5)
                self.stat_update(f"{self.score_key}_bin_{min(int(s * HISTOGRAM_BINS), HISTOGRAM_BINS - 1)}")
                yield doc

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_clf"] = None
        return state


class ScoreThresholdFilter(BaseFilter):
    name = "🎚 score threshold"

    def __init__(self, threshold: float, score_key: str = SCORE_KEY, exclusion_writer=None):
        super().__init__(exclusion_writer)
        self.threshold, self.score_key = threshold, score_key

    def filter(self, doc: Document):
        return True if doc.metadata.get(self.score_key, 0.0) >= self.threshold else (False, "below_threshold")
