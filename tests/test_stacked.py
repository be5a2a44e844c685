"""Stacked seeds (minigpt.stacked): the same training as separate Trainer runs of each seed.

The reference is minigpt.train.Trainer run on each seed alone. Two precisions, two tolerances:

- float64 (the default dtype switched for the test): every operation rounds at about 1e-16, so
  the stacked and the separate weights after 12 steps agree to about 1e-14 (measured); we allow
  1e-10. The losses are rounded to float32 by design in both (GPT.forward and stacked_loss
  take the cross-entropy of `logits.float()`), and the two reduce them in different orders, so
  they agree to a few float32 ulps: rtol 1e-6 (8 ulps). A real difference (a clip over the stack
  instead of per model, an lr one step off, decay on the wrong tensors) moves the weights by
  1e-4 or more within a few steps.
- float32 (the default): batched and separate matrix products sum in different orders, so the
  two differ by rounding that training carries forward. Measured after 12 steps: a separate fp32
  Trainer run is itself 7e-8 (losses, relative) and 5e-6 (weights, relative to the largest) from
  the same run in float64, and the stacked fp32 run is as far from it. We allow ten times that.
"""
import math
from dataclasses import replace

import pytest
import torch

from data_gen import TrainStream, make_task
from minigpt.config import GPTConfig, TrainConfig
from minigpt.model import GPT
from minigpt.stacked import StackedTrainer, clip_grad_norm_per_model, stacked_loss
from minigpt.train import STOP_REQUESTED, Trainer

CONFIG = GPTConfig(n_layer=2, n_head=2, n_embd=16, block_size=32)
SEEDS = [0, 1, 2]
PEAK_LR = 3e-3
# a clip far below the gradients' norms (about 1 here), so that every step of every model is
# clipped by its own norm: a clip over the whole stack would change every update
TRAIN = TrainConfig(steps=12, batch_size=4, seq_len=32, warmup_steps=3, grad_clip=0.05)


def _stream(seed):
    return TrainStream([make_task("add2")], TRAIN.batch_size, TRAIN.seq_len, seed)


def _separate(seed):
    """The reference: one Trainer run of `seed`; returns (losses, model)."""
    torch.manual_seed(seed)
    model = GPT(CONFIG)
    return Trainer(model, _stream(seed), TRAIN, PEAK_LR, progress=False).run().losses, model


def _stacked(seeds, cfg=TRAIN, **kw):
    return StackedTrainer(CONFIG, seeds, [_stream(s) for s in seeds], cfg, PEAK_LR,
                          progress=False, **kw)


@pytest.fixture
def float64():
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(torch.float32)


def _assert_same_weights(a: GPT, b: GPT, rtol: float):
    for (name, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        scale = q.abs().max().item()
        assert (p - q).abs().max().item() <= rtol * scale, name


def _stop_at(step):
    def on_eval(at, models):
        assert len(models) == len(SEEDS) and all(isinstance(m, GPT) for m in models)
        if at == step:
            STOP_REQUESTED.set()  # as a SIGTERM would
    return on_eval


def _run_with_resume(seeds, path, stop, poison=None):
    first = _stacked(seeds, replace(TRAIN, eval_every=stop), checkpoint_path=path,
                     on_eval=_stop_at(stop))
    if poison is not None:
        with torch.no_grad():
            first.params["tok_emb.weight"][poison].fill_(float("nan"))
    try:
        with pytest.raises(KeyboardInterrupt, match=f"stopped at step {stop}"):
            first.run()
    finally:
        STOP_REQUESTED.clear()
    resumed = _stacked(seeds, checkpoint_path=path)
    assert resumed.step == stop
    return resumed, resumed.run()


def test_stacked_models_start_as_separately_seeded_models():
    models = _stacked(SEEDS).models()
    for seed, model in zip(SEEDS, models):
        torch.manual_seed(seed)
        alone = GPT(CONFIG)
        for (name, p), (_, q) in zip(model.state_dict().items(), alone.state_dict().items()):
            assert torch.equal(p, q), (seed, name)


def test_stacked_training_with_a_resume_matches_separate_trainers(tmp_path, float64):
    trainer, results = _run_with_resume(SEEDS, tmp_path / "stack.pt", stop=6)
    for seed, result, model in zip(SEEDS, results, trainer.models()):
        losses, alone = _separate(seed)
        assert result.status == "ok" and result.steps == 12 and len(result.losses) == 12
        torch.testing.assert_close(result.losses, losses, rtol=1e-6, atol=0)
        _assert_same_weights(model, alone, rtol=1e-10)


def test_a_diverging_model_leaves_the_others_training(tmp_path):
    """Seed 1's weights are made NaN: it stops after its first step and leaves the stack; seeds 0
    and 2 train on, through a checkpoint of the smaller stack, as they would alone (float32)."""
    trainer, results = _run_with_resume(SEEDS, tmp_path / "stack.pt", stop=5, poison=1)
    assert results[1].status == "diverged" and results[1].steps == 1
    assert not math.isfinite(results[1].final_loss)
    assert trainer.live == [0, 2] and trainer.status == ["ok", "diverged", "ok"]
    models = trainer.models()
    for index in (0, 2):
        losses, alone = _separate(SEEDS[index])
        assert results[index].status == "ok" and results[index].steps == 12
        torch.testing.assert_close(results[index].losses, losses, rtol=1e-6, atol=0)
        _assert_same_weights(models[index], alone, rtol=5e-5)


def test_clipping_is_per_model():
    """Each model's slice of the stacked gradients is clipped as torch's clip_grad_norm_ clips
    that model alone; norms of 0.3x to 3x the limit, so that some models are clipped and some
    not (a joint norm over the stack would scale all of them alike)."""
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (4, 5, 2), (4, 1)]
    grads = [torch.randn(shape, generator=gen, dtype=torch.float64) for shape in shapes]
    for g, scale in zip(grads, (0.1, 1.0, 3.0)):
        per_model = torch.tensor([0.2, 1.0, 0.5, 2.0], dtype=torch.float64) * scale
        g.mul_(per_model.view(-1, *[1] * (g.dim() - 1)))
    reference = [[torch.zeros_like(g[m], requires_grad=True) for g in grads] for m in range(4)]
    for m in range(4):
        for g, param in zip(grads, reference[m]):
            param.grad = g[m].clone()
    expected_norms = [torch.nn.utils.clip_grad_norm_(params, 4.0).item() for params in reference]
    norms = clip_grad_norm_per_model(grads, 4.0)
    assert min(expected_norms) < 4.0 < max(expected_norms)
    torch.testing.assert_close(norms.tolist(), expected_norms, rtol=1e-12, atol=0)
    for m in range(4):
        for g, param in zip(grads, reference[m]):
            torch.testing.assert_close(g[m], param.grad, rtol=1e-12, atol=0)


def test_stacked_loss_is_each_models_own_loss(float64):
    """stacked_loss against each seed's GPT.forward on its own batch (float64): the same losses
    (to float32 rounding, in which both take the cross-entropy) and the same gradients. Each
    model ignores a different number of targets (-100), so the mean must be per model."""
    trainer = _stacked(SEEDS)
    x, y = (torch.stack(t) for t in zip(*[_stream(s).next_batch() for s in SEEDS]))
    y[1, :2, :] = -100  # more ignored positions in some models than in others
    y[2, 0, :] = -100
    assert len({int((row == -100).sum()) for row in y}) == len(SEEDS)
    losses = stacked_loss(trainer.params, trainer.shells[0], x, y)
    grads = torch.autograd.grad(losses.sum(), list(trainer.params.values()))
    for row, model in enumerate(trainer.models()):
        _, loss = model(x[row], y[row])
        names = [name for name, _ in model.named_parameters()]
        own = dict(zip(names, torch.autograd.grad(loss, list(model.parameters()))))
        torch.testing.assert_close(losses[row], loss, rtol=1e-6, atol=0)
        for name, grad in zip(trainer.params, grads):
            torch.testing.assert_close(grad[row], own[name], rtol=1e-9, atol=1e-12)


def test_recomputed_blocks_give_the_same_loss_and_gradients():
    """Activation checkpointing in the stacked model: recomputation repeats the same CPU kernels
    on the same inputs, so the loss and every gradient are identical bit for bit."""
    trainer = _stacked(SEEDS)
    x, y = (torch.stack(t) for t in zip(*[_stream(s).next_batch() for s in SEEDS]))
    results = []
    for recompute in (False, True):
        loss = stacked_loss(trainer.params, trainer.shells[0], x, y, recompute=recompute)
        grads = torch.autograd.grad(loss.sum(), list(trainer.params.values()))
        results.append((loss, grads))
    assert torch.equal(results[0][0], results[1][0])
    assert all(torch.equal(a, b) for a, b in zip(results[0][1], results[1][1]))


def test_bad_inputs_are_refused(tmp_path):
    with pytest.raises(ValueError, match="one stream per seed"):
        StackedTrainer(CONFIG, [0, 1], [_stream(0)], TRAIN, PEAK_LR, progress=False)
    with pytest.raises(ValueError, match="distinct"):
        StackedTrainer(CONFIG, [3, 3], [_stream(3), _stream(3)], TRAIN, PEAK_LR, progress=False)
    _stacked([0, 1], checkpoint_path=tmp_path / "s.pt").save_checkpoint()
    with pytest.raises(ValueError, match=r"seeds \[0, 1\], not \[0, 2\]"):
        _stacked([0, 2], checkpoint_path=tmp_path / "s.pt")
