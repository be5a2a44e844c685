"""The size ladder and the configs: every named size is within ±25% of its real parameter count."""
import pytest

from minigpt.config import CPU_LADDER, GPU_LADDER, SIZES, GPTConfig, TrainConfig, nominal_params
from minigpt.flops import count_module_params, count_params, training_flops
from minigpt.model import GPT


@pytest.mark.parametrize("name", list(SIZES))
def test_every_size_name_matches_its_non_embedding_count(name):
    config = GPTConfig.from_size(name, attn="sdpa", norm="torch")
    counted = count_params(config)["non_embedding"]
    assert abs(counted / nominal_params(name) - 1) <= 0.25, (name, counted)
    if counted < 5e7:  # build the model and count its real parameters (large ones by formula only)
        assert count_module_params(GPT(config)) == count_params(config)


def test_ladders_are_ordered_and_span_the_design():
    for ladder in (CPU_LADDER, GPU_LADDER):
        counts = [count_params(GPTConfig.from_size(n))["non_embedding"] for n in ladder]
        assert counts == sorted(counts)
    assert list(SIZES) == sorted(SIZES, key=nominal_params)
    assert 15e3 <= nominal_params(CPU_LADDER[0]) <= 30e3 and nominal_params(CPU_LADDER[-1]) == 1e6
    assert [nominal_params(n) for n in GPU_LADDER] == [1e6, 3e6, 1e7, 3e7, 1e8, 3e8, 1e9]


def test_training_flops_follow_kaplan():
    config = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=16)
    n = count_params(config)["non_embedding"]
    assert training_flops(config, 1000) == 1000 * (6 * n + 6 * 2 * 16 * 32)


@pytest.mark.parametrize("kwargs, message", [
    (dict(n_embd=30, n_head=4), "divisible by n_head"),
    (dict(attn="flash"), "valid: auto, triton, sdpa, reference"),
    (dict(norm="rms"), "valid: auto, triton, torch"),
    (dict(n_layer=0), "n_layer must be a positive integer"),
])
def test_bad_gpt_config(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**kwargs)


def test_unknown_size_lists_valid_ones():
    with pytest.raises(ValueError, match="valid: 3k, 6k, 25k, 50k"):
        GPTConfig.from_size("2m")


def test_train_config_validation_and_lr_rule():
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        TrainConfig(steps=0)
    cfg = TrainConfig(lr_base=3e-3, lr_ref_width=128)
    assert cfg.lr_for(64) == cfg.lr_for(128) == 3e-3
    assert cfg.lr_for(256) == pytest.approx(1.5e-3)
    assert TrainConfig().lr_for(32) == TrainConfig().lr_for(112) == 3e-3  # flat on the CPU ladder
