"""tree_runner: prefix_tree rows through its own layer loop give the logits each sequence gets alone from
``model(...)`` (tiny random Llama and Qwen2 decoders: grouped-query heads, biases, kept nodes and Pops),
and fusing the weights leaves the model's own forward unchanged."""

from __future__ import annotations

import random
from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rlaif_jobs.feedback.engines import tree_runner  # noqa: E402
from rlaif_jobs.feedback.engines.prefix_tree import Pop, plan  # noqa: E402

SMALL = dict(vocab_size=97, hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=256)


def _model(kind: str):
    torch.manual_seed(0)
    if kind == "llama":
        cfg = transformers.LlamaConfig(**SMALL, attention_bias=True, mlp_bias=True)
        model = transformers.LlamaForCausalLM(cfg)
    else:
        model = transformers.Qwen2ForCausalLM(transformers.Qwen2Config(**SMALL))
    return model.eval()


def _seqs(rng: random.Random) -> list[list[int]]:
    """Labeler-shaped sequences: a preamble, per pair a context and two orders, answers; and oddities."""
    pre = [rng.randrange(97) for _ in range(9)]
    seqs = []
    for _ in range(5):
        ctx = [rng.randrange(97) for _ in range(rng.randrange(2, 12))]
        a, b = ([rng.randrange(97) for _ in range(rng.randrange(1, 8))] for _ in range(2))
        for first, second in ((a, b), (b, a)):
            seqs += [[*pre, *ctx, *first, 5, *second, tail] for tail in (7, 8)]
    return seqs + [[*pre, 1], [*pre, 1], [*pre, 1, 2, 3]]


def _run(runner, ops) -> dict[tuple[int, int], object]:
    got = {}
    runner.start(ops)
    for op in ops:
        if isinstance(op, Pop):
            runner.pop(op.n)
            continue
        keep = sorted({idx for _, _, idx in op.reads})
        logits = runner.row(op, keep)
        for i, slot, idx in op.reads:
            got[(i, slot)] = logits[keep.index(idx)]
    runner.finish()
    return got


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
@pytest.mark.parametrize("row_tokens", [8, 40, 10_000])  # 8 and 40: subtrees kept in the cache, then popped
def test_rows_give_each_sequences_own_logits(kind, row_tokens):
    model = _model(kind)
    seqs, last = _seqs(random.Random(row_tokens)), 2
    with torch.inference_mode():
        want = [model(input_ids=torch.tensor([s])).logits[0, -last:] for s in seqs]
        assert tree_runner.problem(model) is None
        runner = tree_runner.TreeRunner(model)
        got = _run(runner, plan(seqs, last, row_tokens))
        for i in range(len(seqs)):
            for slot in range(last):
                torch.testing.assert_close(got[(i, slot)], want[i][slot], atol=1e-5, rtol=1e-4)
        # the fused weights are views the model's own modules use: its forward is unchanged
        again = model(input_ids=torch.tensor([seqs[0]])).logits[0, -last:]
        torch.testing.assert_close(again, want[0], atol=1e-5, rtol=1e-4)


def test_other_decoders_are_named_not_run():
    assert "gpt2" in (tree_runner.problem(SimpleNamespace(config=SimpleNamespace(model_type="gpt2"))) or "")
    cfg = SimpleNamespace(model_type="qwen2", layer_types=["full_attention", "sliding_attention"])
    assert tree_runner.problem(SimpleNamespace(config=cfg)) == "sliding-window layers"
