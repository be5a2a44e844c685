"""The model: causal masking, kernel choice through the registry, rotary embeddings."""
import pytest
import torch

from minigpt.config import GPTConfig
from minigpt.model import GPT, apply_rotary, rotary_tables


@pytest.mark.parametrize("attn", ["sdpa", "reference"])
def test_changing_a_future_token_leaves_earlier_logits_unchanged(attn):
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=24, attn=attn, norm="torch"))
    idx = torch.randint(0, model.config.vocab_size, (3, 24))
    changed = idx.clone()
    changed[:, 15] = (changed[:, 15] + 1) % model.config.vocab_size
    with torch.no_grad():
        a, _ = model(idx)
        b, _ = model(changed)
    assert torch.equal(a[:, :15], b[:, :15])
    assert not torch.allclose(a[:, 15:], b[:, 15:])  # the change is seen from its position on


def test_sdpa_and_reference_attention_agree():
    torch.manual_seed(1)
    cfg = dict(n_layer=2, n_head=2, n_embd=32, block_size=16, norm="torch")
    m1 = GPT(GPTConfig(attn="sdpa", **cfg))
    m2 = GPT(GPTConfig(attn="reference", **cfg))
    m2.load_state_dict(m1.state_dict())
    idx = torch.randint(0, 57, (2, 16))
    torch.testing.assert_close(m1(idx)[0], m2(idx)[0], rtol=1e-5, atol=1e-5)


def test_attention_depends_on_relative_position_only():
    """Rotary embeddings: shifting queries and keys by 7 positions leaves their scores unchanged,
    so a packed example scores the same wherever it sits in the context."""
    torch.manual_seed(2)
    q = torch.randn(1, 2, 5, 16)
    cos, sin = rotary_tables(16, 32)
    k = torch.randn(1, 2, 5, 16)
    s0 = apply_rotary(q, cos[:5], sin[:5]) @ apply_rotary(k, cos[:5], sin[:5]).transpose(-1, -2)
    s7 = apply_rotary(q, cos[7:12], sin[7:12]) @ apply_rotary(k, cos[7:12], sin[7:12]).transpose(-1, -2)
    torch.testing.assert_close(s0, s7, rtol=1e-4, atol=1e-5)
    plain = q @ k.transpose(-1, -2)
    assert not torch.allclose(s0, plain, atol=1e-3)  # the rotation does act on the scores


def test_auto_kernels_on_cpu_resolve_to_pytorch():
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=8))
    assert (model.attn_impl, model.norm_impl) == ("sdpa", "torch")


def test_explicit_triton_without_gpu_or_interpreter_is_an_error(monkeypatch):
    monkeypatch.delenv("TRITON_INTERPRET", raising=False)
    with pytest.raises(ValueError, match="--attn triton cannot run here"):
        GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=8, attn="triton", norm="torch"))
    with pytest.raises(ValueError, match="--norm triton cannot run here"):
        GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=8, attn="sdpa", norm="triton"))


def test_too_long_input_is_rejected():
    model = GPT(GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=8))
    with pytest.raises(ValueError, match="exceeds block_size 8"):
        model(torch.zeros(1, 9, dtype=torch.long))
