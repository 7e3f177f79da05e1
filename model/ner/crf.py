"""Linear-chain CRF over BIO tags with masking, exact marginals and Viterbi decoding.

Why a CRF rather than a softmax per token: the uncertainty that active learning ranks by should
be a probability of the *tag sequence*, and entity spans must be well formed. Transitions that
BIO forbids (``O -> I-X``, ``B-Y -> I-X``, start -> ``I-X``) get a fixed -1e4 penalty, so Viterbi
never outputs an invalid sequence and the marginals put (numerically) zero mass on them.

Padding: every recursion step is gated by the mask, so padded positions contribute nothing to the
score, the partition function or the marginals (the reference code scored them as "O").
Batches may be padded on the right only (all our batches are).
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

FORBIDDEN = -1e4


def bio_constraints(tags: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Additive penalties (start (T,), transitions (T, T) from->to) that rule out invalid BIO."""
    n = len(tags)
    start = torch.zeros(n)
    trans = torch.zeros(n, n)
    for j, to in enumerate(tags):
        if not to.startswith("I-"):
            continue
        label = to[2:]
        start[j] = FORBIDDEN
        for i, frm in enumerate(tags):
            if frm[2:] != label or frm == "O":
                trans[i, j] = FORBIDDEN
    return start, trans


class CRF(nn.Module):
    """Emission scores (B, L, T) + learned transitions -> NLL, marginals, Viterbi paths."""

    def __init__(self, tags: Sequence[str]):
        super().__init__()
        n = len(tags)
        self.transitions = nn.Parameter(torch.zeros(n, n))
        self.start = nn.Parameter(torch.zeros(n))
        self.end = nn.Parameter(torch.zeros(n))
        start_pen, trans_pen = bio_constraints(tags)
        self.register_buffer("start_penalty", start_pen, persistent=False)
        self.register_buffer("trans_penalty", trans_pen, persistent=False)

    def _params(self, dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, ...]:
        """(start, transitions, end) with the BIO penalties, in ``dtype`` (float64 at inference,
        so marginals of long sentences still sum to 1 within 1e-9)."""
        return ((self.start + self.start_penalty).to(dtype),
                (self.transitions + self.trans_penalty).to(dtype), self.end.to(dtype))

    def forward_scores(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Forward variables alpha (B, L, T); alpha[:, t] includes the emission at t."""
        start, trans, _ = self._params(emissions.dtype)
        alpha = start + emissions[:, 0]
        alphas = [alpha]
        for t in range(1, emissions.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans, dim=1) + emissions[:, t]
            alpha = torch.where(mask[:, t:t + 1], nxt, alpha)
            alphas.append(alpha)
        return torch.stack(alphas, dim=1)

    def backward_scores(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Backward variables beta (B, L, T): log-sum of scores after position t (end included)."""
        _, trans, end = self._params(emissions.dtype)
        b, length, n = emissions.shape
        beta = end.expand(b, n)
        betas = [beta]
        for t in range(length - 2, -1, -1):
            nxt = torch.logsumexp(trans + (emissions[:, t + 1] + beta).unsqueeze(1), dim=2)
            beta = torch.where(mask[:, t + 1:t + 2], nxt, end.expand(b, n))
            betas.append(beta)
        return torch.stack(betas[::-1], dim=1)

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        _, _, end = self._params(emissions.dtype)
        alpha = self.forward_scores(emissions, mask)[:, -1]
        return torch.logsumexp(alpha + end, dim=1)

    def path_score(self, emissions: torch.Tensor, tags: torch.Tensor,
                   mask: torch.Tensor) -> torch.Tensor:
        """Unnormalised log score of given tag paths (B,); padded positions ignored."""
        start, trans, end = self._params(emissions.dtype)
        m = mask.float()
        emit = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
        score = start[tags[:, 0]] + (emit * m).sum(1)
        if tags.shape[1] > 1:
            score = score + (trans[tags[:, :-1], tags[:, 1:]] * m[:, 1:]).sum(1)
        last = mask.long().sum(1).clamp(min=1) - 1
        return score + end[tags.gather(1, last.unsqueeze(1)).squeeze(1)]

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood summed over the batch (sentences of length 0 must be removed)."""
        return (self.log_partition(emissions, mask) - self.path_score(emissions, tags, mask)).sum()

    def marginals(self, emissions: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(marginals (B, L, T), alpha, beta, log Z) by forward-backward."""
        _, _, end = self._params(emissions.dtype)
        alpha = self.forward_scores(emissions, mask)
        beta = self.backward_scores(emissions, mask)
        log_z = torch.logsumexp(alpha[:, -1] + end, dim=1)
        marg = torch.exp(alpha + beta - log_z[:, None, None])
        return marg, alpha, beta, log_z

    def viterbi(self, emissions: torch.Tensor, mask: torch.Tensor) -> tuple[list[list[int]], torch.Tensor]:
        """Best paths (list per sentence, trimmed to its length) and their unnormalised scores."""
        start, trans, end = self._params(emissions.dtype)
        b, length, n = emissions.shape
        score = start + emissions[:, 0]
        history = []
        for t in range(1, length):
            cand = score.unsqueeze(2) + trans
            best, idx = cand.max(dim=1)
            nxt = best + emissions[:, t]
            m = mask[:, t:t + 1]
            score = torch.where(m, nxt, score)
            # at padded steps the "back-pointer" is the identity, so backtracking passes through
            ident = torch.arange(n, device=emissions.device).expand(b, n)
            history.append(torch.where(m, idx, ident))
        score = score + end
        best_score, last = score.max(dim=1)
        paths = [last]
        for idx in reversed(history):
            last = idx.gather(1, last.unsqueeze(1)).squeeze(1)
            paths.append(last)
        full = torch.stack(paths[::-1], dim=1).cpu().numpy()
        lengths = mask.long().sum(1).cpu().numpy()
        return [full[i, :lengths[i]].tolist() for i in range(b)], best_score
