"""Parity of the whole model: a tiny GPT trained on our Triton kernels follows the same loss curve
as the same GPT on PyTorch's (SDPA attention, F.layer_norm), step for step.

Both models start from one seed and see identical batches (with some targets set to -100, the
ignore index), in fp32 through Triton's interpreter on CPU (compiled kernels on a GPU). The
kernels differ from PyTorch's by fp32 rounding (~1e-7 relative in the first step's gradients);
AdamW carries that through every step, so the per-step loss bound is 1e-4, looser than the
kernels' own tests but far below any real divergence.
"""
import pytest
import torch

from minigpt.config import GPTConfig
from minigpt.model import GPT

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
STEPS = 20
BATCH, SEQ_LEN, VOCAB = 2, 32, 37
FIRST_STEP_REL_TOL = 1e-5  # loss and every gradient before any update
LOSS_REL_TOL = 1e-4        # each of the STEPS losses, after AdamW has compounded the rounding


def build(attn: str, norm: str) -> GPT:
    torch.manual_seed(0)
    config = GPTConfig(n_layer=2, n_head=2, n_embd=32, vocab_size=VOCAB, block_size=SEQ_LEN,
                       attn=attn, norm=norm)
    return GPT(config, device=DEVICE)


def batches():
    gen = torch.Generator().manual_seed(1)
    for _ in range(STEPS):
        idx = torch.randint(0, VOCAB, (BATCH, SEQ_LEN), generator=gen)
        # a rule the model can learn within the test (next id, mod VOCAB), so the loss must fall
        targets = (idx + 1) % VOCAB
        targets[torch.rand(BATCH, SEQ_LEN, generator=gen) < 0.3] = -100  # a prompt the loss ignores
        yield idx.to(DEVICE), targets.to(DEVICE)


def train(model: GPT) -> tuple[list[float], dict[str, torch.Tensor]]:
    """Losses at every step, and the gradients of the first step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    losses, first_grads = [], {}
    for step, (idx, targets) in enumerate(batches()):
        _, loss = model(idx, targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if step == 0:
            first_grads = {name: p.grad.clone() for name, p in model.named_parameters()}
        optimizer.step()
        losses.append(loss.item())
    return losses, first_grads


def test_triton_and_torch_kernels_train_alike():
    ours = build("triton", "triton")
    theirs = build("sdpa", "torch")
    assert (ours.attn_impl, ours.norm_impl) == ("triton", "triton")
    losses, grads = train(ours)
    ref_losses, ref_grads = train(theirs)
    assert abs(losses[0] - ref_losses[0]) <= FIRST_STEP_REL_TOL * abs(ref_losses[0])
    for name, ref in ref_grads.items():
        err = (grads[name] - ref).abs().max() / ref.abs().max().clamp_min(1e-6)
        assert err < FIRST_STEP_REL_TOL, name
    for step, (mine, ref) in enumerate(zip(losses, ref_losses)):
        assert mine == pytest.approx(ref, rel=LOSS_REL_TOL), f"step {step}"
    assert losses[-1] < losses[0]  # it did train
