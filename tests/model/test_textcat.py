"""TextClassifier: learns a toy topic task, probability contracts, multi-label, degenerate data,
save/load without pickle."""
from __future__ import annotations

import random
import zipfile

import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

from model.textcat.classifier import TextClassifier

TOPICS = {
    "sports": "bọọlu ƙwallon kafa goal match kungiyar wasan league striker".split(),
    "health": "asibiti likita magani cuta alurar rigakafi ilera hospital".split(),
    "politics": "zaɓe gwamna majalisa jam'iyya shugaban kasa minista election".split(),
}
COMMON = "da na a ni ti ati si wa ya ta ne o".split()


def toy(n: int, seed: int):
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n):
        topic = list(TOPICS)[i % 3]
        words = rng.choices(TOPICS[topic], k=4) + rng.choices(COMMON, k=8)
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append([topic])
    return texts, labels


def test_learns_toy_topics_and_probabilities_are_sound():
    X, y = toy(60, 0)
    clf = TextClassifier().fit(X, y)
    assert clf.classes_ == ["health", "politics", "sports"]
    Xt, yt = toy(30, 1)
    assert np.mean([p == t for p, t in zip(clf.predict(Xt), yt)]) >= 0.9
    proba = clf.predict_proba(Xt)
    assert proba.shape == (30, 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert clf.predict_proba([]).shape == (0, 3)
    e = clf.embed(Xt + [""])
    assert e.shape == (31, 256) and np.all(np.isfinite(e))
    # same-topic texts are closer in the embedding than different-topic ones
    en = e[:30] / np.linalg.norm(e[:30], axis=1, keepdims=True)
    sim = en @ en.T
    same = np.array([[a == b for b in yt] for a in yt])
    assert sim[same & ~np.eye(30, dtype=bool)].mean() > sim[~same].mean()


def test_nfd_and_nfc_text_get_identical_scores():
    import unicodedata
    X, y = toy(30, 0)
    clf = TextClassifier().fit(X, y)
    text = "ìlera àti ọ̀rọ̀ ƙwallon"
    np.testing.assert_allclose(clf.predict_proba([unicodedata.normalize("NFD", text)]),
                               clf.predict_proba([unicodedata.normalize("NFC", text)]))


def test_multi_label_independent_probabilities():
    X, y = toy(60, 0)
    # every 5th text is also about health
    y = [l + ["health"] if i % 5 == 0 and l != ["health"] else l for i, l in enumerate(y)]
    X = [x + (" asibiti likita" if i % 5 == 0 else "") for i, x in enumerate(X)]
    clf = TextClassifier(multi_label=True).fit(X, y)
    proba = clf.predict_proba(["kungiyar goal match asibiti likita magani da na", "ta ne"])
    assert proba.shape == (2, 3) and np.all((proba >= 0) & (proba <= 1))
    assert set(clf.predict(["goal striker league asibiti likita cuta magani"])[0]) == \
        {"sports", "health"}


def test_one_class_and_singletons():
    one = TextClassifier().fit(["a b c", "d e f"], [["x"], ["x"]])
    assert one.classes_ == ["x"]
    np.testing.assert_allclose(one.predict_proba(["anything"]), [[1.0]])
    assert one.predict(["zz"]) == [["x"]]
    single = TextClassifier().fit(["goal match", "likita asibiti", "zaɓe gwamna"],
                                  [["sports"], ["health"], ["politics"]])
    assert single.predict_proba(["goal"]).shape == (1, 3)
    two = TextClassifier().fit(["goal match", "likita asibiti"], [["sports"], ["health"]])
    assert two.predict(["goal match goal"]) == [["sports"]]
    ml = TextClassifier(multi_label=True).fit(["a", "b"], [["x"], ["x"]])
    assert ml.predict_proba(["c"])[0, 0] > 0.5
    wide = TextClassifier(labels=["religion"]).fit(["goal", "likita"], [["sports"], ["health"]])
    assert wide.classes_ == ["health", "religion", "sports"]
    assert wide.predict_proba(["goal"])[0, 1] < 1e-6


def test_errors():
    with pytest.raises(NotFittedError):
        TextClassifier().predict(["x"])
    with pytest.raises(ValueError, match="exactly one label"):
        TextClassifier().fit(["a"], [["x", "y"]])
    with pytest.raises(ValueError, match="Unknown hyperparameters"):
        TextClassifier(c=1).fit(["a"], [["x"]])


@pytest.mark.parametrize("multi", [False, True])
def test_save_load_identical_and_pickle_free(tmp_path, multi):
    X, y = toy(45, 2)
    clf = TextClassifier(multi_label=multi, C=3.0).fit(X, y)
    clf.save(tmp_path / "m")
    loaded = TextClassifier.load(tmp_path / "m")
    Xt, _ = toy(10, 3)
    assert loaded.classes_ == clf.classes_ and loaded.multi_label == multi
    np.testing.assert_array_equal(loaded.predict_proba(Xt), clf.predict_proba(Xt))
    np.testing.assert_array_equal(loaded.embed(Xt), clf.embed(Xt))
    assert loaded.predict(Xt) == clf.predict(Xt)
    with zipfile.ZipFile(tmp_path / "m" / "textcat.npz") as z:  # plain arrays, no object dtype
        for name in z.namelist():
            assert z.read(name)[:6] == b"\x93NUMPY"
    with np.load(tmp_path / "m" / "textcat.npz", allow_pickle=False) as z:
        assert all(z[k].dtype != object for k in z.files)
