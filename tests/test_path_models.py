"""The KT networks: no peeking at the answer being predicted, next-step scoring that agrees with the
training-time forward pass, and sliding-window evaluation that equals one pass on short sequences."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from edu_flash.path import infer, models
from edu_flash.path.data import q_matrix

pytestmark = pytest.mark.usefixtures("one_thread")


VOCAB = {"items": [f"i{j}" for j in range(7)], "skills": ["a", "b", "c"],
         "q": [[1], [1], [2], [2, 3], [3], [1, 2], [3]]}


def _model(arch, **kw):
    torch.manual_seed(0)
    cfg = {**models.DEFAULTS[arch], "d_model": 16, "n_skills": 3, "n_items": 7, "window": 12, **kw}
    if "n_heads" in cfg:
        cfg["n_heads"] = 4
    m = models.build(arch, q_matrix(VOCAB), cfg)
    models.init_scale(m)
    return m.eval()


def _seq(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(1, 8, (2, n), generator=g), torch.randint(0, 2, (2, n), generator=g).float()


@pytest.mark.parametrize("arch", sorted(models.ARCHS))
def test_prediction_at_t_uses_only_earlier_answers(arch):
    m = _model(arch)
    items, resp = _seq(10)
    with torch.no_grad():
        base = m(items, resp)
        for t in [0, 4, 9]:
            flipped = resp.clone()
            flipped[:, t] = 1 - flipped[:, t]
            z = m(items, flipped)
            assert torch.allclose(z[:, :t + 1], base[:, :t + 1], atol=1e-6)  # its own answer is not seen
            if t < 9:
                assert not torch.allclose(z[:, t + 1:], base[:, t + 1:])   # later predictions do use it


@pytest.mark.parametrize("arch", sorted(models.ARCHS))
def test_next_logits_agree_with_the_forward_pass(arch):
    m = _model(arch)
    items, resp = _seq(9, seed=1)
    cand = torch.arange(1, 8)
    with torch.no_grad():
        full = m(items, resp)
        for t in [0, 1, 5, 8]:
            nxt = m.next_logits(items[:, :t], resp[:, :t], torch.full((2,), t), cand)
            assert torch.allclose(nxt[torch.arange(2), items[:, t] - 1], full[:, t], atol=1e-5)
        # padding after a shorter history changes nothing
        padded_items = torch.cat([items[:, :4], torch.zeros(2, 5, dtype=torch.long)], 1)
        a = m.next_logits(padded_items, resp, torch.tensor([4, 4]), cand)
        b = m.next_logits(items[:, :4], resp[:, :4], torch.tensor([4, 4]), cand)
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("arch", sorted(models.ARCHS))
def test_sliding_window_evaluation_equals_one_pass_when_the_sequence_fits(arch):
    m = _model(arch)
    rng = np.random.default_rng(0)
    items = [rng.integers(1, 8, n) for n in (3, 12, 7)]
    correct = [rng.integers(0, 2, len(i)).astype(np.float32) for i in items]
    y, p, s = infer.eval_probs(m, items, correct, window=12, stride=6, batch_size=2)
    assert len(y) == sum(len(i) - 1 for i in items)
    for k, (it, c) in enumerate(zip(items, correct)):
        with torch.no_grad():
            ref = torch.sigmoid(m(torch.as_tensor(it)[None], torch.as_tensor(c)[None]))[0, 1:].numpy()
        assert np.allclose(np.sort(p[s == k]), np.sort(ref), atol=1e-5)
    # longer than the window: still one score per response after the first
    long_items, long_c = [rng.integers(1, 8, 40)], [rng.integers(0, 2, 40).astype(np.float32)]
    y, p, _ = infer.eval_probs(m, long_items, long_c, window=12, stride=5)
    assert len(p) == 39 and np.array_equal(y, long_c[0][1:])


def test_multi_skill_items_average_their_skills():
    m = _model("dkt")
    h = torch.zeros(1, 1, 16)
    logits = m.out(h)
    z = m._read(logits.expand(1, 1, -1), torch.tensor([[4]]))  # item 4 = skills b and c
    assert torch.allclose(z, logits[..., [2, 3]].mean(-1))


def test_soft_responses_blend_the_two_interaction_embeddings():
    m = _model("sakt")
    items = torch.tensor([[1, 2]])
    e = lambda r: m.interaction(m.e0, m.e1, items, torch.tensor([[r, r]]))
    assert torch.allclose(e(0.25), 0.75 * e(0.0) + 0.25 * e(1.0), atol=1e-6)


def test_dkt_with_item_ids_uses_them_and_still_never_peeks():
    """Issue 13: with items beyond skills, DKT adds Rasch item terms (input and output) that start at
    zero (= plain DKT) and train; next-step scoring still agrees with the forward pass."""
    plain, rasch = _model("dkt"), _model("dkt", item_bias=True)
    items, resp = _seq(9, seed=2)
    with torch.no_grad():
        assert torch.allclose(plain(items, resp), rasch(items, resp), atol=1e-6)   # same start
        rasch.mu.weight.normal_()
        rasch.bias.weight.normal_()
        full = rasch(items, resp)
        assert not torch.allclose(full, plain(items, resp))
        flipped = resp.clone()
        flipped[:, 4] = 1 - flipped[:, 4]
        assert torch.allclose(rasch(items, flipped)[:, :5], full[:, :5], atol=1e-6)
        nxt = rasch.next_logits(items[:, :6], resp[:, :6], torch.full((2,), 6), torch.arange(1, 8))
        assert torch.allclose(nxt[torch.arange(2), items[:, 6] - 1], full[:, 6], atol=1e-5)
