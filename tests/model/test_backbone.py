"""BackboneTagger on a tiny randomly initialised BERT built here (no download, no network)."""
from __future__ import annotations

import numpy as np
import pytest
from seqeval.metrics import f1_score

transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

import torch  # noqa: E402

from model.ner.backbone import BackboneTagger  # noqa: E402
torch.set_num_threads(1)
FILLER = "the a of and to went said that we they is was with for on by".split()
NAMES = ["Musa", "Amina", "Bello", "Ngozi", "Tunde", "Zainab"]
PLACES = ["Kano", "Lagos", "Abuja", "Kaduna", "Mombasa", "Ibadan"]


def toy_data(n: int, seed: int):
    """Sentences where the word after "mr" is a PER and the word after "in" a LOC."""
    rng = np.random.default_rng(seed)
    X, y = [], []
    for _ in range(n):
        toks, tags = [], []
        for _ in range(rng.integers(1, 3, endpoint=True)):
            filler = list(rng.choice(FILLER, rng.integers(1, 4, endpoint=True)))
            toks += filler
            tags += ["O"] * len(filler)
            if rng.random() < 0.5:
                toks += ["mr", str(rng.choice(NAMES))]
                tags += ["O", "B-PER"]
            else:
                toks += ["in", str(rng.choice(PLACES))]
                tags += ["O", "B-LOC"]
        X.append(toks)
        y.append(tags)
    return X, y
SPECIAL = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _tiny_model(directory) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import BertConfig, BertForTokenClassification, PreTrainedTokenizerFast

    # names are split into two pieces ("Mu", "##sa") so multi-subword words get exercised
    vocab = SPECIAL + sorted(set(FILLER) | {"mr", "in"})
    for w in NAMES + PLACES:
        vocab += [w[:2], "##" + w[2:]]
    vocab = list(dict.fromkeys(vocab))
    wp = models.WordPiece({t: i for i, t in enumerate(vocab)}, unk_token="[UNK]")
    tok = Tokenizer(wp)
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", 2), ("[SEP]", 3)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    fast.save_pretrained(directory)
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2,
                     num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    torch.manual_seed(0)
    BertForTokenClassification(cfg).save_pretrained(directory)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    d = tmp_path_factory.mktemp("tiny-bert")
    _tiny_model(d)
    X, y = toy_data(200, 0)
    return BackboneTagger(path=d, max_epochs=12, lr=3e-3, max_seconds=60, patience=4).fit(X, y)


def test_first_subword_alignment(fitted):
    batch, firsts = fitted._encode([["mr", "Musa", "in", "Kano"], ["the"]],
                                   [["O", "B-PER", "O", "B-LOC"], ["O"]])
    ids = batch["input_ids"][0].tolist()
    toks = fitted.tokenizer_.convert_ids_to_tokens(ids)
    assert toks == ["[CLS]", "mr", "Mu", "##sa", "in", "Ka", "##no", "[SEP]"]
    assert firsts[0] == [1, 2, 4, 5]
    tag = fitted.tag_id_
    assert batch["labels"][0].tolist() == [-100, tag["O"], tag["B-PER"], -100, tag["O"],
                                           tag["B-LOC"], -100, -100]
    # padding and special tokens of the short sentence are ignored too
    assert batch["labels"][1].tolist() == [-100, tag["O"]] + [-100] * 6


def test_learns_and_api_contract(fitted):
    X, y = toy_data(60, 1)
    assert f1_score(y, fitted.predict(X)) >= 0.9
    X = X[:5] + [[]]
    margs = fitted.predict_marginals(X)
    for x, m in zip(X, margs):
        assert m.shape == (len(x), len(fitted.tags_))
        np.testing.assert_allclose(m.sum(axis=1), 1.0, atol=1e-6)
    lp = fitted.sequence_log_proba(X)
    assert lp.shape == (6,) and np.all(lp <= 1e-9)
    spans = fitted.predict_spans(X)
    assert spans[-1] == [] and all(0 < s[3] <= 1 for sent in spans for s in sent)
    mc = fitted.mc_dropout_marginals(X, n_samples=3)
    assert mc[0].shape == (3, len(X[0]), len(fitted.tags_)) and mc[-1].shape[1] == 0
    assert fitted.embed(X).shape == (6, 32)


def test_save_load_identical(fitted, tmp_path):
    X, _ = toy_data(10, 2)
    fitted.save(tmp_path / "saved")
    loaded = BackboneTagger.load(tmp_path / "saved")
    assert loaded.tags_ == fitted.tags_
    assert loaded.predict(X) == fitted.predict(X)
    for a, b in zip(loaded.predict_marginals(X), fitted.predict_marginals(X)):
        np.testing.assert_allclose(a, b, atol=1e-6)
    assert not list((tmp_path / "saved").rglob("*.bin"))  # safetensors, not pickle
