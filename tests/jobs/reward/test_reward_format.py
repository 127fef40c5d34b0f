"""The text a reward model scores: chat-templated for instruct models, plain for others; left truncation."""

from __future__ import annotations

import pytest
from transformers import AutoTokenizer

from rlaif_jobs.models.resolve import resolve_model_uri
from rlaif_jobs.reward.format import reward_input, tokenize_reward_inputs


@pytest.fixture(scope="module")
def chat_tok(tiny_model):
    return AutoTokenizer.from_pretrained(resolve_model_uri(tiny_model))


@pytest.fixture(scope="module")
def encoder_tok():
    return AutoTokenizer.from_pretrained(resolve_model_uri("builtin://minilm-l6-v2"))


def test_chat_model_sees_the_policy_turn_format(chat_tok):
    text = reward_input(chat_tok, "Summarize: the cat sat.", "A cat sat.")
    assert text == chat_tok.apply_chat_template(
        [{"role": "user", "content": "Summarize: the cat sat."}, {"role": "assistant", "content": "A cat sat."}],
        tokenize=False)
    assert "<|im_start|>user\nSummarize: the cat sat.<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\nA cat sat.<|im_end|>\n")
    ids = tokenize_reward_inputs(chat_tok, [text])["input_ids"][0].tolist()
    assert ids == chat_tok(text, add_special_tokens=False)["input_ids"]  # nothing added twice
    assert ids[-1] != chat_tok.pad_token_id  # the pooled (last non-pad) token is the response's end


def test_long_inputs_lose_the_start_of_the_context_not_the_response(chat_tok):
    text = reward_input(chat_tok, "word " * 500, "The answer is forty-two.")
    enc = tokenize_reward_inputs(chat_tok, [text, reward_input(chat_tok, "short", "ok")], max_length=64)
    assert enc["input_ids"].shape == (2, 64)
    kept = chat_tok.decode(enc["input_ids"][0])
    assert kept.endswith("The answer is forty-two.<|im_end|>\n")
    assert enc["attention_mask"][1].sum() < 64  # the short one is padded
    assert chat_tok.truncation_side == "right"  # the caller's setting is left as it was


def test_model_max_length_is_the_default_limit(chat_tok):
    chat_tok.model_max_length = 16
    try:
        assert tokenize_reward_inputs(chat_tok, [reward_input(chat_tok, "x " * 100, "y")])["input_ids"].shape[1] == 16
    finally:
        chat_tok.model_max_length = 8192


def test_encoder_without_template_gets_plain_text_and_its_own_special_tokens(encoder_tok):
    text = reward_input(encoder_tok, "Is water wet?", "Yes.")
    assert text == "Is water wet?\n\nYes."  # no EOS token in a BERT vocabulary
    ids = tokenize_reward_inputs(encoder_tok, [text])["input_ids"][0].tolist()
    assert ids[0] == encoder_tok.cls_token_id and ids[-1] == encoder_tok.sep_token_id


def test_scorer_on_an_encoder_keeps_input_order_across_batches(tmp_path):
    # A MiniLM (BERT) classifier with one output, saved as a folder: no chat template, [CLS] pooling.
    import torch
    from transformers import AutoModelForSequenceClassification

    from rlaif_jobs.reward.scorer import RewardModelScorer

    src = resolve_model_uri("builtin://minilm-l6-v2")
    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(src, num_labels=1).save_pretrained(tmp_path / "rm")
    AutoTokenizer.from_pretrained(src).save_pretrained(tmp_path / "rm")
    scorer = RewardModelScorer(str(tmp_path / "rm"))
    contexts = ["Q?", "A much longer question about many different things?", "Why?"]
    responses = ["Yes.", "Because of several reasons that take a while to explain.", "No."]
    one_by_one = [scorer.score([c], [r])[0] for c, r in zip(contexts, responses, strict=True)]
    assert scorer.score(contexts, responses, batch_size=2) == pytest.approx(one_by_one, abs=1e-5)
    assert len(set(one_by_one)) == 3
    with pytest.raises(ValueError, match="3 contexts but 2 responses"):
        scorer.score(contexts, responses[:2])
