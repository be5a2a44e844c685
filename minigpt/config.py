"""Typed configs and the named size ladder.

GPTConfig describes a model, TrainConfig one training run; both validate themselves on creation,
so a bad combination fails before a step is taken. SIZES is the one ordered table of named model
presets, smallest first; each name states the model's non-embedding parameter count, the count
Kaplan et al. 2020 relate to loss, within ±25% (tests/test_config.py checks every entry against
the real model). Counts below are from `minigpt.flops.count_params` (vocabulary 57).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from data_gen.tokenizer import VOCAB_SIZE
from kernels import ATTENTION_CHOICES, NORM_CHOICES

# name: (n_layer, n_head, n_embd)               non-embedding params
SIZES: dict[str, tuple[int, int, int]] = {
    "3k": (1, 1, 16),        # 3,312
    "6k": (2, 1, 16),        # 6,592
    "25k": (2, 2, 32),       # 25,472
    "50k": (4, 2, 32),       # 50,880
    "100k": (4, 3, 48),      # 113,184
    "200k": (4, 4, 64),      # 200,064
    "400k": (5, 4, 80),      # 389,360
    "1m": (6, 4, 112),       # 912,128
    "3m": (6, 3, 192),       # 2,669,568
    "10m": (8, 5, 320),      # 9,864,320
    "30m": (12, 7, 448),     # 28,972,160
    "100m": (12, 12, 768),   # 85,056,000
    "300m": (24, 16, 1024),  # 302,311,424
    "1b": (20, 16, 2048),    # 1,007,169,536
}
CPU_LADDER = ("25k", "50k", "100k", "200k", "400k", "1m")
GPU_LADDER = ("1m", "3m", "10m", "30m", "100m", "300m", "1b")


def nominal_params(name: str) -> float:
    """The count a size's name states: '25k' -> 25e3, '1b' -> 1e9."""
    scale = {"k": 1e3, "m": 1e6, "b": 1e9}[name[-1]]
    return float(name[:-1]) * scale


@dataclass
class GPTConfig:
    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 64
    vocab_size: int = VOCAB_SIZE
    block_size: int = 64
    attn: str = "auto"  # see kernels.ATTENTION_CHOICES
    norm: str = "auto"  # see kernels.NORM_CHOICES

    def __post_init__(self):
        for key in ("n_layer", "n_head", "n_embd", "vocab_size", "block_size"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{key} must be a positive integer, got {value!r}")
        if self.n_embd % self.n_head:
            raise ValueError(f"n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head})")
        if self.attn not in ATTENTION_CHOICES:
            raise ValueError(f"unknown attn '{self.attn}'; valid: {', '.join(ATTENTION_CHOICES)}")
        if self.norm not in NORM_CHOICES:
            raise ValueError(f"unknown norm '{self.norm}'; valid: {', '.join(NORM_CHOICES)}")

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    @classmethod
    def from_size(cls, name: str, **overrides) -> "GPTConfig":
        if name not in SIZES:
            raise ValueError(f"unknown size '{name}'; valid: {', '.join(SIZES)}")
        n_layer, n_head, n_embd = SIZES[name]
        return cls(n_layer=n_layer, n_head=n_head, n_embd=n_embd, **overrides)


COMPILE_MODES = ("auto", "off", "default", "reduce-overhead")


@dataclass
class TrainConfig:
    """One training run. The learning rate follows one rule across sizes (see `lr_for`)."""
    steps: int = 1000
    batch_size: int = 64
    seq_len: int = 64
    lr_base: float = 3e-3           # peak learning rate at width <= lr_ref_width
    lr_ref_width: int = 128         # above this width the peak lr falls as 1/width (muP-like)
    warmup_steps: int = 100
    min_lr_frac: float = 0.1        # cosine decays to this fraction of the peak
    weight_decay: float = 0.1
    betas: tuple[float, float] = (0.9, 0.98)
    grad_clip: float = 1.0
    activation_checkpointing: bool = False  # recompute each block's activations in backward
    # torch.compile the training step: "off"; "default" or "reduce-overhead" (CUDA graphs, for
    # small models whose steps are launch-bound); "auto" = reduce-overhead on CUDA, off elsewhere
    # (on a CPU, compiling each size costs 20-35 s against a 0.75-0.8x step time: never repaid)
    compile: str = "auto"
    compile_backend: str = "inductor"  # "aot_eager" traces without generating code (tests)
    eval_every: int = 0             # 0: evaluate only at the end
    checkpoint_every: int = 0       # 0: no periodic checkpoints by step count
    checkpoint_minutes: float = 5.0 # also checkpoint when this much wall time has passed; 0: never
    seed: int = 0
    device: str = "cpu"
    extra: dict = field(default_factory=dict)

    def __post_init__(self):
        for key in ("steps", "batch_size", "seq_len"):
            value = getattr(self, key)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{key} must be a positive integer, got {value!r}")
        for key in ("warmup_steps", "eval_every", "checkpoint_every"):
            if getattr(self, key) < 0:
                raise ValueError(f"TrainConfig.{key} must be >= 0, got {getattr(self, key)}")
        if not (isinstance(self.checkpoint_minutes, (int, float)) and self.checkpoint_minutes >= 0):
            raise ValueError(f"TrainConfig.checkpoint_minutes must be >= 0, got {self.checkpoint_minutes!r}")
        if self.compile not in COMPILE_MODES:
            raise ValueError(f"TrainConfig.compile must be one of {', '.join(COMPILE_MODES)}, got "
                             f"{self.compile!r}")
        if not isinstance(self.activation_checkpointing, bool):
            raise ValueError(f"TrainConfig.activation_checkpointing must be True or False, got "
                             f"{self.activation_checkpointing!r}")
        if not self.lr_base > 0 or not 0 <= self.min_lr_frac <= 1:
            raise ValueError("lr_base must be > 0 and min_lr_frac in [0, 1]")

    def lr_for(self, n_embd: int) -> float:
        """Peak learning rate for a model of width `n_embd`: lr_base * min(1, lr_ref_width / n_embd).

        Wider models take smaller steps (the 1/width scaling of muP for hidden matrices, applied
        to all of them for simplicity). With the defaults: 3e-3 for the whole CPU ladder (widths
        32-112), 1.5e-3 at width 256, 1.9e-4 at 1B. Measured on the CPU ladder (docs/benchmarks.md):
        at 1500 steps the 1M model reached 97% on 3-digit addition at 3e-3 but stayed at 6% at
        2e-3 and 66% at 1.3e-3.
        """
        return self.lr_base * min(1.0, self.lr_ref_width / n_embd)


def check_device(name: str) -> str:
    """A device string this project can train on ("auto" picks cuda when present), or a ValueError
    naming the valid ones."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError):
        raise ValueError(f"'{name}' is not a device; valid: auto, cpu, cuda, cuda:N") from None
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"device '{name}' is not supported; valid: auto, cpu, cuda, cuda:N")
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device '{name}': no CUDA device is available here; use cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"device '{name}': only {torch.cuda.device_count()} CUDA device(s)")
    return str(device)
