"""Turning token lists into integer tensors for the tagger: word ids, character ids, word shapes.

Why three views of a word: with a few hundred labelled sentences most test words were never seen,
so the word embedding alone is useless for them. Characters carry the morphology (Hausa prefixes,
Swahili noun classes, Yorùbá tone marks) and the casing; the shape id gives the casing/digit
pattern directly so the model does not need to learn it from characters first.

Text is NFC-normalised before lookup: Label Studio users paste Yorùbá both precomposed and with
combining tone marks, and the two spellings must map to the same ids.
"""
from __future__ import annotations

import unicodedata
import zlib
from collections import Counter
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

PAD, UNK = 0, 1
BOUND = 2  # character id of the begin/end-of-word marker; real characters start at 3
MAX_WORD_CHARS = 20  # longer words keep their first 12 and last 8 characters (prefix + suffix)

SHAPES = ("pad", "lower", "title", "upper", "mixed", "digits", "has_digit", "punct", "other")
_SHAPE_ID = {s: i for i, s in enumerate(SHAPES)}


# The per-word and per-feature functions below are pure and see the same few thousand words over
# and over (a 10,000-sentence re-score: 550,000 tokens, 2.7 million feature strings): memoised,
# encoding takes a third of the time. The caches are bounded.
_CACHE = 2 ** 18


@lru_cache(maxsize=_CACHE)
def normalise(word: str) -> str:
    return unicodedata.normalize("NFC", word)


@lru_cache(maxsize=_CACHE)
def word_key(word: str) -> str:
    """The word-embedding key: lowercased, digits folded to 0 (years and amounts generalise)."""
    return "".join("0" if c.isdigit() else c for c in normalise(word).lower())


@lru_cache(maxsize=_CACHE)
def word_shape(word: str) -> int:
    """A coarse casing/digit class of the word (index into ``SHAPES``)."""
    letters = [c for c in word if c.isalpha()]
    if word.isdigit():
        return _SHAPE_ID["digits"]
    if any(c.isdigit() for c in word):
        return _SHAPE_ID["has_digit"]
    if not letters:
        return _SHAPE_ID["punct"] if all(unicodedata.category(c)[0] in "PS" for c in word) \
            else _SHAPE_ID["other"]
    if all(c.islower() for c in letters):
        return _SHAPE_ID["lower"]
    if all(c.isupper() for c in letters):
        return _SHAPE_ID["upper"] if len(letters) > 1 else _SHAPE_ID["title"]
    if letters[0].isupper() and all(c.islower() for c in letters[1:]):
        return _SHAPE_ID["title"]
    return _SHAPE_ID["mixed"]


SPARSE_BUCKETS = 2 ** 18  # hashed lexical features; bucket 0 is padding
N_LEXICAL = 10            # lexical features per token
N_CLUSTER = 5             # word-class features per token (0 = padding when there are none)
N_SPARSE = N_LEXICAL + N_CLUSTER


def _bucket(feature: str) -> int:
    return zlib.crc32(feature.encode("utf-8")) % (SPARSE_BUCKETS - 1) + 1


# memoised for the features of word pairs (shape trigram, bigram); a single word's features are
# memoised as a whole by _word_hashes, so they need not fill this cache a second time
_hash = lru_cache(maxsize=4 * _CACHE)(_bucket)


@lru_cache(maxsize=_CACHE)
def _word_hashes(w: str) -> tuple[int, ...]:
    """The hashed features a word key contributes in each role: itself, as the word 1 and 2 to
    the left / right of another, and its affixes. One cached tuple per distinct word instead of
    eight f-strings per token (same hash values)."""
    return tuple(_bucket(f) for f in (f"w={w}", f"w-1={w}", f"w+1={w}", f"w-2={w}", f"w+2={w}",
                                      f"s3={w[-3:]}", f"s2={w[-2:]}", f"p3={w[:3]}"))


def sparse_features(sent: Sequence[str], clusters=None) -> np.ndarray:
    """Hashed CRF-style lexical features per token (n, N_SPARSE): the word, its +-2 neighbours,
    affixes, neighbouring shapes and the previous-word bigram; then, with ``clusters``
    (``model.ner.clusters.WordClusters`` learnt from the project's raw text), the word's class at
    each granularity and its neighbours' middle one (bucket 0, i.e. nothing, without them).

    Why next to the neural features: with a few hundred sentences a linear model on such
    features (the classic CRF) learns faster than a BiLSTM; feeding them straight into the
    emission scores gives the tagger that head start, and the BiLSTM adds on top as data grows.
    """
    n = len(sent)
    if not n:
        return np.zeros((0, N_SPARSE), dtype=np.int64)
    keys = [word_key(t) for t in sent]
    shapes = ["<s>", *(SHAPES[word_shape(normalise(t))] for t in sent), "</s>"]
    begin, end = _word_hashes("<s>"), _word_hashes("</s>")
    h = np.array([begin, begin, *map(_word_hashes, keys), end, end], dtype=np.int64)  # (n + 4, 8)
    out = np.empty((n, N_SPARSE), dtype=np.int64)
    out[:, 0] = h[2:n + 2, 0]   # w
    out[:, 1] = h[1:n + 1, 1]   # w-1
    out[:, 2] = h[3:n + 3, 2]   # w+1
    out[:, 3] = h[0:n, 3]       # w-2
    out[:, 4] = h[4:n + 4, 4]   # w+2
    out[:, 5:8] = h[2:n + 2, 5:8]  # s3, s2, p3
    out[:, 8] = [_hash(f"sh={shapes[i]}|{shapes[i + 1]}|{shapes[i + 2]}") for i in range(n)]
    prev = ["<s>", *keys]
    out[:, 9] = [_hash(f"bi={prev[i]}|{keys[i]}") for i in range(n)]
    out[:, N_LEXICAL:] = 0
    if clusters is not None and len(clusters):
        cl = [clusters.classes.get(k) for k in keys]
        for i, c in enumerate(cl):
            if c is not None:
                out[i, N_LEXICAL:N_LEXICAL + 3] = [_hash(f"c{j}={v}") for j, v in enumerate(c)]
            if i > 0 and cl[i - 1] is not None:
                out[i, N_LEXICAL + 3] = _hash(f"c-1={cl[i - 1][1]}")
            if i + 1 < n and cl[i + 1] is not None:
                out[i, N_LEXICAL + 4] = _hash(f"c+1={cl[i + 1][1]}")
    return out


def _clip_chars(word: str) -> str:
    if len(word) <= MAX_WORD_CHARS:
        return word
    return word[:12] + word[-8:]


class Vocab:
    """Word and character vocabularies built from the training sentences.

    ``word_counts`` is kept so training can replace rare words by UNK at random (word dropout):
    the UNK embedding then learns what an unseen word looks like, which is most words at test time.
    """

    def __init__(self, words: list[str], chars: list[str], word_counts: list[int], clusters=None):
        self.words = words            # index i + 2 -> words[i]
        self.clusters = clusters      # WordClusters of the project's raw text, or None
        self.chars = chars
        self.word_counts = np.asarray(word_counts, dtype=np.int64)
        self._w = {w: i + 2 for i, w in enumerate(words)}
        self._c = {c: i + 3 for i, c in enumerate(chars)}

    @classmethod
    def build(cls, sentences: Sequence[Sequence[str]], min_char_count: int = 1,
              clusters=None) -> "Vocab":
        wc: Counter[str] = Counter()
        cc: Counter[str] = Counter()
        for sent in sentences:
            for tok in sent:
                wc[word_key(tok)] += 1
                cc.update(normalise(tok))
        words = sorted(wc, key=lambda w: (-wc[w], w))
        chars = sorted((c for c in cc if cc[c] >= min_char_count), key=lambda c: (-cc[c], c))
        return cls(words, chars, [wc[w] for w in words], clusters)

    @property
    def n_words(self) -> int:
        return len(self.words) + 2

    @property
    def n_chars(self) -> int:
        return len(self.chars) + 3

    def to_json(self) -> dict:
        """Words and characters; the clusters are the caller's to save (``NERTagger.save``)."""
        return {"words": self.words, "chars": self.chars,
                "word_counts": self.word_counts.tolist()}

    @classmethod
    def from_json(cls, d: dict, clusters=None) -> "Vocab":
        return cls(list(d["words"]), list(d["chars"]), list(d["word_counts"]), clusters)

    def encode_words(self, sent: Sequence[str]) -> np.ndarray:
        return np.array([self._w.get(word_key(t), UNK) for t in sent], dtype=np.int64)

    def word_frequencies(self, ids: np.ndarray) -> np.ndarray:
        """Training counts of the given word ids (0 for PAD/UNK)."""
        out = np.zeros(ids.shape, dtype=np.int64)
        known = ids >= 2
        out[known] = self.word_counts[ids[known] - 2]
        return out

    def encode(self, sent: Sequence[str]) -> tuple:
        """One sentence -> (word ids (n,), shape ids (n,), spellings (n,), sparse (n, K)); done
        once per sentence. Spellings are the NFC, clipped words the char-CNN reads; ``collate``
        turns each distinct one of a batch into character ids once."""
        normed = tuple(_clip_chars(normalise(t)) for t in sent)
        shapes = np.array([word_shape(t) for t in normed], dtype=np.int64)
        return self.encode_words(sent), shapes, normed, sparse_features(sent, self.clusters)

    def char_ids(self, spellings: Sequence[str]) -> np.ndarray:
        """(U, C) character ids of each spelling framed by begin/end markers, zero-padded."""
        lens = np.array([len(t) for t in spellings], dtype=np.int64)
        u = len(spellings)
        chars = np.zeros((max(u, 1), int(lens.max(initial=0)) + 2), dtype=np.int64)
        if u:  # one scatter for all of them instead of a numpy write per word
            cget = self._c.get
            rows = np.repeat(np.arange(u), lens)
            cols = np.arange(int(lens.sum())) - np.repeat(np.cumsum(lens) - lens, lens) + 1
            chars[rows, cols] = [cget(c, UNK) for t in spellings for c in t]
            chars[:u, 0] = BOUND
            chars[np.arange(u), lens + 1] = BOUND
        return chars

    def collate(self, encoded: Sequence[tuple]) -> dict[str, np.ndarray]:
        """Right-padded batch arrays: words/shapes/mask/spelling (B, L), sparse (B, L, K), and
        chars (U, C) for the U distinct spellings of the batch; ``spelling`` indexes them.

        Why distinct spellings: a batch of 256 sentences says "da", "ya" and "Kano" hundreds of
        times, and the char-CNN's output depends on nothing but the spelling (it was a fifth of
        the model time when re-scoring 10,000 tasks). L >= 1 always."""
        b = len(encoded)
        max_len = max([len(e[0]) for e in encoded] + [1])
        words = np.zeros((b, max_len), dtype=np.int64)
        shapes = np.zeros((b, max_len), dtype=np.int64)
        spelling = np.zeros((b, max_len), dtype=np.int64)
        mask = np.zeros((b, max_len), dtype=bool)
        sparse = np.zeros((b, max_len, N_SPARSE), dtype=np.int64)
        seen: dict[str, int] = {}
        for i, (w, s, normed, f) in enumerate(encoded):
            n = len(w)
            sparse[i, :n] = f
            words[i, :n] = w
            shapes[i, :n] = s
            spelling[i, :n] = [seen.setdefault(t, len(seen)) for t in normed]
            mask[i, :n] = True
        return {"words": words, "shapes": shapes, "chars": self.char_ids(list(seen)), "spelling": spelling,
                "mask": mask, "sparse": sparse}
