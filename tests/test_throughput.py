"""minigpt.throughput: its arithmetic on CPU (the GPU numbers themselves are benchmarks)."""
import pytest

from minigpt.config import GPTConfig
from minigpt.flops import training_flops
from minigpt.throughput import main, measure


def test_measure_counts_tokens_and_flops_on_cpu():
    row = measure("25k", "torch", "eager", batch_size=2, seq_len=16, steps=2, warmup=1,
                  peak_tflops=1.0, device="cpu")
    assert row["tokens_per_step"] == 32
    step_s = row["step_ms"] / 1e3
    assert row["tokens_per_s"] == pytest.approx(32 / step_s, rel=1e-2)
    flops = training_flops(GPTConfig.from_size("25k", block_size=16), 32, 16)
    assert row["mfu"] == pytest.approx(flops / step_s / 1e12, rel=1e-2, abs=1e-4)


@pytest.mark.parametrize("argv", [["--sizes", "7m"], ["--modes", "fast"], ["--kernels", ""],
                                  ["--seq-len", "0"], ["--tokens-per-step", "1000", "--seq-len", "64"],
                                  ["--warmup", "-1"], ["--peak-tflops", "0"], ["--peak-tflops", "nan"]])
def test_bad_arguments_exit_with_a_message(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        main(argv)
    assert exc.value.code == 2
    assert "error" in capsys.readouterr().err
