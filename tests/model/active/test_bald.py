"""BALD keeps epistemic disagreement between dropout samples and ignores aleatoric ambiguity."""
import numpy as np
import pytest

from model.active import BALD, Entropy, MissingOutputError, ModelOutputs
from tests.model.active.contract import StrategyContract


class TestBALDContract(StrategyContract):
    def make_strategy(self):
        return BALD()


def _item(samples):
    s = np.array(samples, dtype=float)[:, None, :]  # (S, 1 token, T)
    return s


def test_bald_ranks_disagreeing_samples_first_and_ignores_ambiguity():
    agree = _item([[0.9, 0.1]] * 4)                       # confident, consistent
    disagree = _item([[0.95, 0.05], [0.05, 0.95]] * 2)   # epistemic: samples disagree
    ambiguous = _item([[0.5, 0.5]] * 4)                   # aleatoric: consistently 50/50
    mc = [agree, disagree, ambiguous]
    out = ModelOutputs.from_marginals([m.mean(0) for m in mc], mc_marginals=mc)
    s = BALD().scores(out)
    assert s[2] == pytest.approx(0.0, abs=1e-9) and s[0] == pytest.approx(0.0, abs=1e-9)
    assert s[1] > 0.4
    assert BALD().query(out, [0, 1, 2], 1).tolist() == [1]
    # entropy cannot tell the two apart: it ranks the ambiguous item as high as the disagreeing one
    e = Entropy().scores(out)
    assert e[2] == pytest.approx(e[1])


def test_bald_needs_mc_samples():
    out = ModelOutputs.from_marginals([np.array([[0.5, 0.5]])])
    with pytest.raises(MissingOutputError, match="MC-dropout"):
        BALD().scores(out)


def test_bald_mean_over_real_tokens_and_lengths_checked():
    tok_a = [[0.95, 0.05], [0.05, 0.95]]
    two = np.array([tok_a, [[0.9, 0.1], [0.9, 0.1]]]).transpose(1, 0, 2)  # (S=2, len=2, T)
    out = ModelOutputs.from_marginals([two.mean(0)], mc_marginals=[two])
    one = ModelOutputs.from_marginals([two[:, :1].mean(0)], mc_marginals=[two[:, :1]])
    assert BALD().scores(out)[0] == pytest.approx(BALD().scores(one)[0] / 2)
    bad = ModelOutputs.from_marginals([two.mean(0)], mc_marginals=[two[:, :1]])
    with pytest.raises(ValueError, match="lengths"):
        BALD().scores(bad)
