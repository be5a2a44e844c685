"""Greedy decoding with the key/value cache, checked against a naive loop written here: one prompt
at a time, the whole prefix through `model(idx)` at every step, argmax of the last position."""
import pytest
import torch

from data_gen import TrainStream, make_task
from data_gen.tokenizer import EOS_ID, encode
from minigpt.config import GPTConfig, TrainConfig
from minigpt.evaluate import evaluate_examples
from minigpt.generate import bench, greedy_generate, main
from minigpt.model import GPT
from minigpt.train import Trainer


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """These tests run hundreds of tiny forward passes; on the shared 2-core machine two threads
    made them many times slower than one (issue 12: 40-60x on a loaded machine)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@torch.no_grad()
def naive_generate(model, prompt, max_new_tokens, stop_id):
    """The reference: unbatched, uncached, written without minigpt.generate."""
    model.eval()
    idx = torch.tensor([prompt])
    out = []
    for _ in range(max_new_tokens):
        logits, _ = model(idx)
        token = int(logits[0, -1].argmax())
        if token == stop_id:
            break
        out.append(token)
        idx = torch.cat([idx, torch.tensor([[token]])], dim=1)
    return out


def _random_model(seed=0, attn="sdpa", block_size=24, n_layer=2):
    """Random weights. At the model's own init (GPT-2's std 0.02, tied embeddings) an untrained
    model just repeats its last token whatever came before, which hides a cache that gets
    positions or keys wrong (measured: such a bug passed there); so embeddings are drawn at std 1
    and the other matrices and biases at std 0.5, and the continuation depends on the context."""
    torch.manual_seed(seed)
    model = GPT(GPTConfig(n_layer=n_layer, n_head=2, n_embd=32, block_size=block_size, attn=attn,
                          norm="torch"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "ln_" not in name:
                p.normal_(0.0, 1.0 if "emb" in name else 0.5)
    return model


@pytest.fixture(scope="module")
def random_model():
    return _random_model()


@pytest.fixture(scope="module")
def trained_model():
    """A few dozen steps on add2: enough that it writes digits and then the end token."""
    torch.manual_seed(0)
    model = GPT(GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=32, attn="sdpa", norm="torch"))
    cfg = TrainConfig(steps=80, batch_size=16, seq_len=32, warmup_steps=5, seed=0)
    stream = TrainStream([make_task("add2")], cfg.batch_size, cfg.seq_len, 0)
    Trainer(model, stream, cfg, cfg.lr_for(32), progress=False).run()
    return model


def _mixed_prompts(seed=0, n=11, lengths=(1, 3, 3, 5, 7, 7, 7, 9, 2, 5, 3)):
    g = torch.Generator().manual_seed(seed)
    return [torch.randint(1, 57, (lengths[i % len(lengths)],), generator=g).tolist()
            for i in range(n)]


def _add2_prompts(n=40):
    return [encode(ex.prompt) for ex in make_task("add2", eval_size=n).eval_set()]


@pytest.mark.parametrize("use_cache", [True, False])
def test_random_model_matches_the_naive_loop(random_model, use_cache):
    prompts = _mixed_prompts()
    expected = [naive_generate(random_model, p, 10, None) for p in prompts]
    got = greedy_generate(random_model, prompts, 10, stop_id=None, batch_size=3, use_cache=use_cache)
    assert got == expected
    assert all(len(row) == 10 for row in got)
    assert sum(len(set(row)) for row in got) > 3 * len(got)  # continuations, not one repeated token


@pytest.mark.parametrize("use_cache", [True, False])
def test_trained_model_matches_the_naive_loop(trained_model, use_cache):
    # prompts of three lengths in one call: add2 problems, some cut short, some with a prefix
    prompts = _add2_prompts(30)
    prompts = prompts[:10] + [p[2:] for p in prompts[10:20]] + [encode("1") + p for p in prompts[20:]]
    expected = [naive_generate(trained_model, p, 8, EOS_ID) for p in prompts]
    got = greedy_generate(trained_model, prompts, 8, batch_size=4, use_cache=use_cache)
    assert got == expected
    # the outputs are not trivial: mostly digits, and some answers end with the end token
    full = [naive_generate(trained_model, p, 8, None) for p in prompts[:10]]
    assert any(EOS_ID in row for row in full), full
    assert sum(t in range(3, 13) for row in got for t in row) > 0.5 * sum(map(len, got))


def test_cached_equals_uncached_on_a_trained_model(trained_model):
    prompts = _add2_prompts(200) + _mixed_prompts(1, n=30)
    cached = greedy_generate(trained_model, prompts, 6, batch_size=64)
    uncached = greedy_generate(trained_model, prompts, 6, batch_size=64, use_cache=False)
    assert cached == uncached


def test_stop_token_cuts_one_sequence_early_and_not_another(random_model):
    prompts = _mixed_prompts(2, n=8)
    free = [naive_generate(random_model, p, 8, None) for p in prompts]
    # a stop token that some prompt first writes after step 0 and some other prompt never writes
    found = [(i, t) for i, row in enumerate(free) for t in row[1:]
             if t not in row[:1] and any(t not in other for other in free)]
    assert found, f"no usable stop token in {free}; use other prompts"
    early, stop = found[0]
    never = [i for i, row in enumerate(free) if stop not in row]
    for use_cache in (True, False):
        got = greedy_generate(random_model, prompts, 8, stop_id=stop, use_cache=use_cache)
        assert 0 < len(got[early]) < 8 and got[early] == free[early][:free[early].index(stop)]
        for i in never:
            assert got[i] == free[i] and len(got[i]) == 8
        assert got == [row[:row.index(stop)] if stop in row else row for row in free]


def test_decoding_stops_once_every_sequence_has_stopped(trained_model):
    prompts = _add2_prompts(12)
    free = [naive_generate(trained_model, p, 10, None) for p in prompts]
    ending = [(p, row) for p, row in zip(prompts, free) if EOS_ID in row[1:]]
    assert len(ending) >= 2, f"too few answers end with the end token: {free}"
    last = max(row.index(EOS_ID) for _, row in ending)  # the step at which the last one stops
    assert last < 9
    calls = []
    hook = trained_model.register_forward_hook(lambda *args: calls.append(1))
    try:
        got = greedy_generate(trained_model, [p for p, _ in ending], 10)
    finally:
        hook.remove()
    assert got == [row[:row.index(EOS_ID)] for _, row in ending]
    assert len(calls) == last + 1  # the prefill, then one step per token written after the first


def test_zero_new_tokens_and_no_prompts(random_model):
    assert greedy_generate(random_model, [[5, 6], [7]], 0) == [[], []]
    assert greedy_generate(random_model, [], 5) == []


def test_prompt_plus_new_tokens_beyond_block_size_is_rejected(random_model):
    ok = greedy_generate(random_model, [[3] * 20], 4, stop_id=None)  # exactly block_size 24
    assert ok == [naive_generate(random_model, [3] * 20, 4, None)]
    with pytest.raises(ValueError, match=r"20 tokens.*max_new_tokens 5.*25.*block_size 24"):
        greedy_generate(random_model, [[3, 4], [3] * 20], 5)


@pytest.mark.parametrize("kwargs, message", [
    (dict(prompts=[[]], max_new_tokens=3), "prompt 0 is empty"),
    (dict(prompts=[[3], [99]], max_new_tokens=3), "prompt 1 holds token id 99"),
    (dict(prompts=[[3]], max_new_tokens=-1), "max_new_tokens must be an integer >= 0"),
    (dict(prompts=[[3]], max_new_tokens=2, batch_size=0), "batch_size must be a positive"),
    (dict(prompts=[[3]], max_new_tokens=2, stop_id=57), "stop_id 57 is outside"),
])
def test_bad_arguments_are_named(random_model, kwargs, message):
    with pytest.raises(ValueError, match=message):
        greedy_generate(random_model, **kwargs)


def test_model_without_a_cache_needs_use_cache_false():
    class Plain(torch.nn.Module):
        def forward(self, idx, targets=None):
            return torch.nn.functional.one_hot((idx + 1) % 57, 57).float(), None

    with pytest.raises(TypeError, match="use_cache=False"):
        greedy_generate(Plain(), [[3]], 2)
    assert greedy_generate(Plain(), [[3], [4, 9]], 3, stop_id=None, use_cache=False) == \
        [[4, 5, 6], [10, 11, 12]]


def test_training_mode_is_restored(random_model):
    random_model.train()
    greedy_generate(random_model, [[3, 4]], 2)
    assert random_model.training
    random_model.eval()
    greedy_generate(random_model, [[3, 4]], 2)
    assert not random_model.training


def test_cache_gives_the_full_forward_logits():
    """Prefill, one-token steps and a several-token chunk after the cache all reproduce the
    logits of one forward pass over the whole sequence."""
    model = _random_model(4)
    model.eval()
    idx = torch.randint(0, 57, (3, 20), generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        full, _ = model(idx)
        cache = model.new_kv_cache()
        parts = [model(idx[:, :7], cache=cache)[0]]
        parts += [model(idx[:, t:t + 1], cache=cache)[0] for t in range(7, 12)]
        parts.append(model(idx[:, 12:20], cache=cache)[0])
    assert cache.length == 20
    # these logits reach about 20, so float32 summed in another order differs by about 1e-5 (the
    # same model's full forward with SDPA and with the reference attention differ by 1.7e-5);
    # a wrong rotary position or a missing key moves logits by order 1
    torch.testing.assert_close(torch.cat(parts, dim=1), full, rtol=1e-5, atol=1e-4)
    with pytest.raises(ValueError, match="20 cached \\+ 5 new tokens exceed"):
        model(idx[:, :5], cache=cache)


def test_triton_prefill_matches_the_naive_loop():
    """The prefill runs our Triton attention kernel (interpreted on CPU); decode steps use SDPA."""
    model = _random_model(5, attn="triton", block_size=16, n_layer=1)
    assert model.attn_impl == "triton"
    prompts = [[5, 9, 14, 3], [7, 7, 2], [11, 12, 13, 14]]
    expected = [naive_generate(model, p, 4, None) for p in prompts]
    assert greedy_generate(model, prompts, 4, stop_id=None, batch_size=2) == expected


def test_evaluation_metrics_are_the_same_with_and_without_the_cache(trained_model):
    examples = make_task("add2", eval_size=100).eval_set()
    cached = evaluate_examples(trained_model, examples, "cpu", batch_size=64, use_cache=True)
    uncached = evaluate_examples(trained_model, examples, "cpu", batch_size=64, use_cache=False)
    assert cached == uncached
    assert cached["per_digit_acc"] > 0.2  # a model that writes digits, so the decoding is exercised


def test_bench_reports_both_times_and_identical_outputs(capsys):
    (row,) = bench(sizes=("25k",), task="add2", n_prompts=20, repeats=1)
    assert row["identical"] and row["new_tokens"] == 3
    assert row["cached_s"] > 0 and row["uncached_s"] > 0
    assert row["ratio"] == pytest.approx(row["cached_s"] / row["uncached_s"])
    assert main(["--bench", "--sizes", "25k", "--prompts", "5", "--repeats", "1"]) == 0
    assert "ratio" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["--bench", "--sizes", "7k"], "unknown size"),
    (["--bench", "--task", "add"], "unknown task"),
    (["--bench", "--prompts", "0"], "--prompts and --repeats must be >= 1"),
    (["--bench", "--sizes", "25k", "--new-tokens", "60"], "more than the model's block_size 64"),
    ([], "pass --bench"),
])
def test_bench_cli_rejects_bad_input(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
