"""NERTagger: learns a toy language, round-trips through save/load, gives sound uncertainties."""
from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from seqeval.metrics import f1_score
from sklearn.exceptions import NotFittedError

from model.ner.crf import CRF
from model.ner.spans import bio_entities, repair_bio, span_probability
from model.ner.tagger import NERTagger

torch.set_num_threads(1)

FILLER = "the a of and to yesterday went said that we they is was with for on by very".split()
NAMES = ["Musa", "Amina", "Bello", "Ngozi", "Tunde", "Zainab", "Kemi", "Juma", "Halima", "Sani"]
PLACES = ["Kano", "Lagos", "Abuja", "Kaduna", "Mombasa", "Ibadan", "Arusha", "Zaria", "Jos"]


def _sentence(rng: random.Random, names=NAMES, places=PLACES):
    toks, tags = [], []
    for _ in range(rng.randint(1, 3)):
        toks += rng.sample(FILLER, rng.randint(1, 4))
        tags += ["O"] * (len(toks) - len(tags))
        kind = rng.random()
        if kind < 0.4:
            toks += ["mr", rng.choice(names)]
            tags += ["O", "B-PER"]
            if rng.random() < 0.4:
                toks.append(rng.choice(names))
                tags.append("I-PER")
        elif kind < 0.8:
            toks += ["in", rng.choice(places)]
            tags += ["O", "B-LOC"]
    return toks, tags


def toy_data(n: int, seed: int, **kw):
    rng = random.Random(seed)
    pairs = [_sentence(rng, **kw) for _ in range(n)]
    return [p[0] for p in pairs], [p[1] for p in pairs]


@pytest.fixture(scope="module")
def fitted():
    X, y = toy_data(200, 0)
    return NERTagger(max_epochs=25, seed=0, hidden=32, word_dim=32, char_filters=32,
                     max_seconds=30).fit(X, y)


def test_learns_toy_language_including_unseen_names(fitted):
    # new names and places never seen in training: only context and casing tell the entity
    X, y = toy_data(100, 1, names=["Obi", "Fatima", "Ade", "Wanjiru"],
                    places=["Enugu", "Nairobi", "Sokoto"])
    assert fitted.tags_ == ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    assert f1_score(y, fitted.predict(X)) >= 0.95


def test_marginals_shapes_sum_to_one_and_match_viterbi(fitted):
    X, _ = toy_data(20, 2)
    X.append([])
    margs = fitted.predict_marginals(X)
    assert len(margs) == len(X)
    for x, m in zip(X, margs):
        assert m.shape == (len(x), len(fitted.tags_))
        np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-5)
    preds = fitted.predict(X)
    assert preds[-1] == [] and margs[-1].shape == (0, 5)
    lp = fitted.sequence_log_proba(X)
    assert lp.shape == (len(X),) and np.all(lp <= 1e-6) and lp[-1] == 0.0
    # a confident model: the Viterbi path holds most of the probability mass on training-like data
    assert np.exp(lp[:-1]).mean() > 0.5


def test_predictions_are_valid_bio_and_spans_carry_probabilities(fitted):
    X = [["mr", "Zzyzx", "went", "in"], ["in", "Kano", "mr", "Musa", "Bello"], ["I-LOC", "of"]]
    for tags in fitted.predict(X):
        assert repair_bio(tags) == tags
    spans = fitted.predict_spans(X)
    assert [(s[0], s[1], s[2]) for s in spans[1]] == [(1, 2, "LOC"), (3, 5, "PER")]
    for sent, tags in zip(spans, fitted.predict(X)):
        assert [(a, b, c) for a, b, c, _ in sent] == bio_entities(tags)
        assert all(0.0 < conf <= 1.0 for *_, conf in sent)
    # the span event implies each of its tags, so it can be no likelier than its least likely tag
    marg = fitted.predict_marginals(X)[1]
    col = {t: i for i, t in enumerate(fitted.tags_)}
    assert spans[1][0][3] <= marg[1, col["B-LOC"]] + 1e-9
    assert spans[1][1][3] <= min(marg[3, col["B-PER"]], marg[4, col["I-PER"]]) + 1e-9
    assert spans[1][0][3] > 0.5


def test_uncertainty_higher_out_of_distribution(fitted):
    X_in, _ = toy_data(30, 3)
    X_out = [["Xq", "Zorblat", "ππ", "vvv", "Qeeq", "KK7", "mr", "in"] for _ in range(30)]
    conf_in = np.mean([m.max(axis=1).min() for m in fitted.predict_marginals(X_in)])
    conf_out = np.mean([m.max(axis=1).min() for m in fitted.predict_marginals(X_out)])
    assert conf_out < conf_in
    assert fitted.sequence_log_proba(X_out).mean() < fitted.sequence_log_proba(X_in).mean()


def test_mc_dropout_samples_differ_and_have_right_shapes(fitted):
    X = [["mr", "Sani", "went", "in", "Jos"], []]
    s = fitted.mc_dropout_marginals(X, n_samples=4, seed=1)
    assert s[0].shape == (4, 5, 5) and s[1].shape == (4, 0, 5)
    np.testing.assert_allclose(s[0].sum(axis=2), 1.0, atol=1e-5)
    assert not np.allclose(s[0][0], s[0][1])
    again = fitted.mc_dropout_marginals(X, n_samples=4, seed=1)
    np.testing.assert_allclose(again[0], s[0])  # seeded
    # dropout is off again afterwards: plain marginals are deterministic
    np.testing.assert_allclose(fitted.predict_marginals(X)[0], fitted.predict_marginals(X)[0])


def test_mc_dropout_never_touches_the_serving_network(fitted):
    """BALD re-scoring may run while /predict serves from the same tagger: sampling works on a
    copy, so the serving network stays in eval mode and deterministic throughout."""
    import threading

    X, _ = toy_data(40, 11)
    expected = fitted.predict_marginals(X)
    seen_training, diffs = [], []

    def serve():
        for _ in range(15):
            seen_training.append(fitted.net_.training)
            got = fitted.predict_marginals(X)
            diffs.append(max(float(np.abs(a - b).max()) if len(a) else 0.0 for a, b in zip(got, expected)))

    th = threading.Thread(target=serve)
    th.start()
    fitted.mc_dropout_marginals(X, n_samples=6, seed=3)
    th.join()
    assert not any(seen_training) and max(diffs) < 1e-9


def test_decode_is_one_pass_of_everything(fitted):
    """``decode`` (what the backend uses) agrees with the separate methods it replaces."""
    X, _ = toy_data(25, 12)
    X.append([])
    d = fitted.decode(X)
    assert [x.tags for x in d] == fitted.predict(X)
    np.testing.assert_allclose([x.log_proba for x in d], fitted.sequence_log_proba(X), atol=1e-9)
    for x, m in zip(d, fitted.predict_marginals(X)):
        np.testing.assert_allclose(x.marginals, m, atol=1e-9)
    assert [x.spans for x in d] == fitted.predict_spans(X)
    assert d[-1].tags == [] and d[-1].marginals.shape == (0, 5) and d[-1].log_proba == 0.0
    assert any(x.spans for x in d)


def test_embed_shapes(fitted):
    X, _ = toy_data(5, 4)
    e = fitted.embed(X + [[]])
    assert e.shape == (6, 64) and np.all(np.isfinite(e)) and np.all(e[-1] == 0)
    assert fitted.embed([]).shape == (0, 64)


def test_save_load_identical(fitted, tmp_path):
    X, _ = toy_data(15, 5)
    X.append([])
    target = tmp_path / "new" / "dir"
    fitted.save(target)
    loaded = NERTagger.load(target)
    assert loaded.tags_ == fitted.tags_
    assert loaded.predict(X) == fitted.predict(X)
    for a, b in zip(loaded.predict_marginals(X), fitted.predict_marginals(X)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(loaded.embed(X), fitted.embed(X), atol=1e-6)


def test_not_fitted_and_bad_input():
    with pytest.raises(NotFittedError):
        NERTagger().predict([["a"]])
    with pytest.raises(ValueError, match="tags"):
        NERTagger(max_epochs=1).fit([["a", "b"]], [["O"]])
    with pytest.raises(ValueError, match="B-X"):
        NERTagger(max_epochs=1).fit([["a"]], [["PER"]])
    with pytest.raises(ValueError, match="Unknown hyperparameters"):
        NERTagger(max_epochs=1, hiden=3).fit([["a"]], [["O"]])


def test_degenerate_training_sets():
    one = NERTagger(max_epochs=3).fit([["mr", "Musa"]], [["O", "B-PER"]])
    assert one.tags_ == ["O", "B-PER", "I-PER"]
    assert len(one.predict([["mr", "Bello", "x"]])[0]) == 3
    all_o = NERTagger(max_epochs=2).fit([["a", "b"], ["c"], []], [["O", "O"], ["O"], []])
    assert all_o.tags_ == ["O"]
    assert all_o.predict([["x", "y"]]) == [["O", "O"]]
    np.testing.assert_allclose(all_o.predict_marginals([["x"]])[0], [[1.0]])
    assert all_o.predict_spans([["x"]]) == [[]]
    # declared labels widen tags_ so marginal columns stay stable across retrains
    wide = NERTagger(max_epochs=1, labels=["ORG", "PER"]).fit([["a"]], [["O"]])
    assert wide.tags_ == ["O", "B-ORG", "I-ORG", "B-PER", "I-PER"]
    # a dangling I- tag is read as the start of an entity (as seqeval does), not rejected
    NERTagger(max_epochs=1).fit([["a", "b"]], [["I-LOC", "O"]])


@torch.no_grad()
def test_crf_ignores_padding_and_matches_brute_force():
    torch.manual_seed(0)
    tags = ["O", "B-X", "I-X"]
    crf = CRF(tags)
    crf.transitions.normal_()
    crf.start.normal_()
    crf.end.normal_()
    emis = torch.randn(1, 3, 3)
    padded = torch.cat([emis, torch.randn(1, 2, 3) * 50], dim=1)  # garbage in the padding
    mask = torch.tensor([[True, True, True, False, False]])
    marg, _, _, log_z = crf.marginals(padded, mask)
    ref_marg, _, _, ref_z = crf.marginals(emis, torch.ones(1, 3, dtype=torch.bool))
    torch.testing.assert_close(log_z, ref_z)
    torch.testing.assert_close(marg[:, :3], ref_marg)
    # brute force over all 27 paths
    import itertools
    scores = {}
    for path in itertools.product(range(3), repeat=3):
        t = torch.tensor([path])
        scores[path] = float(crf.path_score(emis, t, torch.ones(1, 3, dtype=torch.bool)))
    z = np.logaddexp.reduce(list(scores.values()))
    assert abs(z - float(ref_z)) < 1e-4
    best = max(scores, key=scores.get)
    paths, _ = crf.viterbi(padded, mask)
    assert tuple(paths[0]) == best
    assert tuple(paths[0]) != (0, 2, 2) and paths[0][0] != 2  # BIO constraints hold
    # exact span probability: P(B-X at 0, I-X at 1, not I-X at 2), by brute force and by spans.py
    brute = sum(np.exp(v - z) for p, v in scores.items() if p[:2] == (1, 2) and p[2] != 2)
    m64, alpha, beta, lz = crf.marginals(emis.double(), torch.ones(1, 3, dtype=torch.bool))
    _, trans, end = (a.numpy() for a in crf._params(torch.float64))
    got = span_probability(0, 2, 1, 2, alpha[0].numpy(), beta[0].numpy(), emis[0].double().numpy(),
                           trans, end, float(lz[0]))
    assert abs(got - brute) < 1e-6
    brute_end = sum(np.exp(v - z) for p, v in scores.items() if p[1:] == (1, 2))
    got_end = span_probability(1, 3, 1, 2, alpha[0].numpy(), beta[0].numpy(),
                               emis[0].double().numpy(), trans, end, float(lz[0]))
    assert abs(got_end - brute_end) < 1e-6


def test_encoding_keeps_the_feature_definitions_saved_models_were_trained_with():
    """A saved tagger's weights mean what these hashed features meant when it was trained: the
    word, its +-2 neighbours, affixes, the shape trigram and the bigram, exactly as spelled here,
    and characters framed by begin/end markers. A faster encoder must give the same ids."""
    from model.ner.features import (BOUND, SHAPES, UNK, Vocab, _hash, normalise, sparse_features, word_key,
                                    word_shape)

    sent = ["Musa", "ya", "je", "Kano", "ranar", "2023", "Ọ̀ṣun", ","]
    keys = ["<s>", "<s>", *map(word_key, sent), "</s>", "</s>"]
    shapes = ["<s>", *(SHAPES[word_shape(normalise(t))] for t in sent), "</s>"]
    expected = []
    for i in range(len(sent)):
        w, k = keys[i + 2], i + 2
        expected.append([_hash(f) for f in (
            f"w={w}", f"w-1={keys[k - 1]}", f"w+1={keys[k + 1]}", f"w-2={keys[k - 2]}", f"w+2={keys[k + 2]}",
            f"s3={w[-3:]}", f"s2={w[-2:]}", f"p3={w[:3]}", f"sh={shapes[i]}|{shapes[i + 1]}|{shapes[i + 2]}",
            f"bi={keys[k - 1]}|{w}")])
    assert sparse_features(sent).tolist() == [e + [0] * 5 for e in expected]  # no word classes: padding
    assert sparse_features([]).shape == (0, 15)

    # with word classes: the word's class at each granularity, the neighbours' middle one
    from model.ner.clusters import WordClusters
    wc = WordClusters({"musa": (1, 2, 3), "kano": (4, 5, 6)}, "d", 2)
    with_cl = sparse_features(sent, wc).tolist()
    assert with_cl[0][:10] == expected[0] and with_cl[0][10:] == [_hash("c0=1"), _hash("c1=2"), _hash("c2=3"), 0, 0]
    assert with_cl[1][10:] == [0, 0, 0, _hash("c-1=2"), 0] and with_cl[2][10:] == [0, 0, 0, 0, _hash("c+1=5")]

    vocab = Vocab.build([["Musa", "ya", "je"]])
    batch = vocab.collate([vocab.encode(["Musa", "Kanoo", "Musa"]), vocab.encode(["Kanoo"])])
    chars, spelling = batch["chars"], batch["spelling"]
    assert chars.tolist() == [[BOUND, *(vocab._c[c] for c in "Musa"), BOUND, 0],
                              [BOUND, UNK, vocab._c["a"], UNK, UNK, UNK, BOUND]]  # K, n, o unseen
    assert spelling.tolist() == [[0, 1, 0], [1, 0, 0]] and batch["mask"].tolist() == [[1, 1, 1], [1, 0, 0]]
