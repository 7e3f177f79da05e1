"""The neural part of the tagger: char-CNN + word + shape embeddings -> BiLSTM -> emissions -> CRF.

Sizes are small on purpose: the model is retrained on every Label Studio webhook on 2 CPU cores,
and with a few hundred sentences a bigger network only overfits faster.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from model.ner.crf import CRF
from model.ner.features import SHAPES, SPARSE_BUCKETS


class CharCNN(nn.Module):
    """Character embeddings -> 1-D convolution (width 3) -> max over the word -> highway layer.

    The highway layer lets the network pass the raw n-gram detectors through or mix them, which
    helps char-aware taggers when there is little data (Kim et al. 2016).
    """

    def __init__(self, n_chars: int, char_dim: int, filters: int):
        super().__init__()
        self.emb = nn.Embedding(n_chars, char_dim, padding_idx=0)
        self.conv = nn.Conv1d(char_dim, filters, kernel_size=3, padding=1)
        self.gate = nn.Linear(filters, filters)
        self.proj = nn.Linear(filters, filters)

    def forward(self, chars: torch.Tensor) -> torch.Tensor:
        """chars (N, C) -> (N, filters)."""
        x = self.emb(chars).transpose(1, 2)
        h = torch.tanh(self.conv(x))
        h = h.masked_fill((chars == 0).unsqueeze(1), -1.0)  # tanh >= -1, so padding never wins
        h = h.max(dim=2).values
        g = torch.sigmoid(self.gate(h))
        return g * torch.relu(self.proj(h)) + (1 - g) * h


class ConvEncoder(nn.Module):
    """Residual dilated 1-D convolutions over the sentence (Strubell et al. 2017's ID-CNN idea).

    Why offered beside the BiLSTM: convolutions run in parallel over positions, several times
    faster than a recurrent net on CPU, so the same time budget buys more epochs. Inputs are
    zeroed at padded positions before every convolution, so padding never leaks into real tokens.
    """

    def __init__(self, in_dim: int, hidden: int, dropout: float, dilations=(1, 2, 4, 1)):
        super().__init__()
        self.inp = nn.Linear(in_dim, 2 * hidden)
        self.convs = nn.ModuleList(nn.Conv1d(2 * hidden, 2 * hidden, 3, padding=d, dilation=d)
                                   for d in dilations)
        self.drop = nn.Dropout(dropout / 2)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        m = mask.unsqueeze(1).float()
        h = torch.relu(self.inp(x)).transpose(1, 2) * m
        for conv in self.convs:
            h = (h + self.drop(torch.relu(conv(h)))) * m
        return h.transpose(1, 2)


class BiLSTMCRF(nn.Module):
    def __init__(self, tags: Sequence[str], n_words: int, n_chars: int, *, word_dim: int,
                 char_dim: int, char_filters: int, shape_dim: int, hidden: int, dropout: float,
                 encoder: str = "lstm", sparse: bool = True):
        super().__init__()
        # hashed lexical features -> per-tag scores added to the emissions (a linear CRF inside)
        self.sparse = nn.Embedding(SPARSE_BUCKETS, len(tags), padding_idx=0) if sparse else None
        if sparse:
            nn.init.zeros_(self.sparse.weight)
        self.word_emb = nn.Embedding(n_words, word_dim, padding_idx=0)
        self.shape_emb = nn.Embedding(len(SHAPES), shape_dim, padding_idx=0)
        self.char_cnn = CharCNN(n_chars, char_dim, char_filters)
        self.emb_dropout = nn.Dropout(dropout)
        in_dim = word_dim + shape_dim + char_filters
        if encoder == "lstm":
            self.lstm = nn.LSTM(in_dim, hidden, batch_first=True, bidirectional=True)
        elif encoder == "cnn":
            self.conv = ConvEncoder(in_dim, hidden, dropout)
        else:
            raise ValueError(f"Unknown encoder {encoder!r}; expected 'lstm' or 'cnn'")
        self.encoder = encoder
        self.out_dropout = nn.Dropout(dropout)
        self.emit = nn.Linear(2 * hidden, len(tags))
        self.crf = CRF(tags)

    def states(self, words: torch.Tensor, shapes: torch.Tensor, chars: torch.Tensor,
               spelling: torch.Tensor, mask: torch.Tensor, sparse: torch.Tensor | None = None) -> torch.Tensor:
        """BiLSTM states (B, L, 2H); zero at padded positions. Every sentence needs length >= 1.
        ``chars`` (U, C) holds each distinct spelling of the batch once, ``spelling`` (B, L)
        points into it (see ``Vocab.collate``)."""
        b, length = words.shape
        char_feat = words.new_zeros((b, length, self.char_cnn.proj.out_features), dtype=torch.float)
        char_feat[mask] = self.char_cnn(chars)[spelling[mask]]  # padding costs nothing
        x = torch.cat([self.word_emb(words), self.shape_emb(shapes), char_feat], dim=2)
        x = self.emb_dropout(x)
        if self.encoder == "cnn":
            return self.conv(x, mask)
        lengths = mask.sum(1).cpu()
        # packing keeps the backward LSTM from reading padding before the real last token
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=length)
        return out

    def emissions(self, states: torch.Tensor, sparse: torch.Tensor | None = None) -> torch.Tensor:
        out = self.emit(self.out_dropout(states))
        if self.sparse is not None and sparse is not None:
            out = out + self.sparse(sparse).sum(dim=2)
        return out
