"""The transformers engine's shared-prefix scoring (prefix_tree) labels exactly as the plain loop does,
computing far fewer tokens (real SmolLM2-135M-Instruct, float32), on tree_runner and on the model(...)
fallback."""

from __future__ import annotations

import pytest
from label_helpers import config, pairs, read_jsonl, write_jsonl

from rlaif_jobs.feedback import open_engine
from rlaif_jobs.feedback.engines import hf_engine, tree_runner
from rlaif_jobs.label import main

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(("row_tokens", "fast"), [  # 48: long subtrees stay in the cache (keep), then Pop
    (48, True), (hf_engine.ROW_TOKENS, True), (48, False), (hf_engine.MODEL_ROW_TOKENS, False)])
def test_shared_prefix_labels_equal_the_plain_loop(tmp_path, monkeypatch, row_tokens, fast):
    data = write_jsonl(tmp_path / "d.jsonl", pairs(6))
    loop = open_engine(config(data, tmp_path, engine="transformers",
                              labeler={"batchSize": 1, "enablePrefixCaching": False}).labeler)
    try:
        main(config(data, tmp_path / "loop", engine="transformers",
                    labeler={"batchSize": 1, "enablePrefixCaching": False}), engine=loop)
    finally:
        loop.close()
    monkeypatch.setattr(hf_engine, "ROW_TOKENS", row_tokens)
    monkeypatch.setattr(hf_engine, "MODEL_ROW_TOKENS", row_tokens)
    if not fast:
        monkeypatch.setattr(tree_runner, "problem", lambda model: "the fallback under test")
    cfg = config(data, tmp_path / "tree", engine="transformers")
    tree = open_engine(cfg.labeler)
    try:
        assert (tree.runner is not None) == fast
        main(cfg, engine=tree)
        assert tree.computed_tokens < 0.6 * tree.prompt_tokens  # both orders share each pair's context
    finally:
        tree.close()
    want, got = read_jsonl(tmp_path / "loop" / "labels.jsonl"), read_jsonl(tmp_path / "tree" / "labels.jsonl")
    assert [r["id"] for r in got] == [r["id"] for r in want]
    for g, w in zip(got, want, strict=True):
        for key in ("pA", "pAOrderAB", "pAOrderBA"):
            assert g[key] == pytest.approx(w[key], abs=1e-4)
