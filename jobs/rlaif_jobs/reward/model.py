"""Loads the base (SFT) model as a scalar-head reward model: AutoModelForSequenceClassification, 1 label."""

from __future__ import annotations

import logging
from typing import Any

from rlaif_jobs.config.common import ModelRef
from rlaif_jobs.errors import ConfigError

log = logging.getLogger(__name__)


class BaseModelError(ConfigError):
    """The base model (or its tokenizer) cannot be loaded."""


def load_tokenizer(ref: ModelRef, path: str) -> Any:
    """The tokenizer of ``ref`` (ref.tokenizer if set), with a pad token (EOS when it has none)."""
    from transformers import AutoTokenizer

    from rlaif_jobs.models.resolve import resolve_model_uri

    where = "baseModel.tokenizer" if ref.tokenizer else "baseModel.uri"
    source = ref.tokenizer or ref.uri
    try:
        tok_path = resolve_model_uri(ref.tokenizer) if ref.tokenizer else path
        tok = AutoTokenizer.from_pretrained(tok_path, revision=ref.revision, trust_remote_code=ref.trust_remote_code)
    except Exception as err:  # transformers raises OSError, ValueError, KeyError...: all "cannot load"
        raise BaseModelError(f"{where}: cannot load a tokenizer from {source!r} ({_short(err)})") from None
    if tok.pad_token is None:
        if tok.eos_token is None:
            raise BaseModelError(f"{where}: tokenizer of {source!r} has neither a pad nor an EOS token")
        tok.pad_token = tok.eos_token
    return tok


def load_reward_model(ref: ModelRef, head_init: str = "normal") -> tuple[Any, Any]:
    """(tokenizer, model): ``ref`` as a sequence classifier with one output (the reward), in float32.

    float32 because DeepSpeed keeps the optimizer's master weights in the dtype it is given and casts
    the module itself to bf16/fp16 as the precision says. The new score head is initialised by
    transformers (seed it first for identical ranks), or to zero with ``head_init="zero"``
    (training.scoreHeadInit). Raises BaseModelError naming baseModel.uri (or the head init field).
    """
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    from rlaif_jobs.models.resolve import resolve_model

    try:
        path = resolve_model(ref)
        # The config first: cheap, and the clearest message for a folder that is not a model.
        AutoConfig.from_pretrained(path, revision=ref.revision, trust_remote_code=ref.trust_remote_code)
    except Exception as err:  # ModelNotFoundError, ModelInstallError, an unknown architecture...
        raise BaseModelError(f"baseModel.uri: cannot load {ref.uri!r} ({_short(err)})") from None
    tok = load_tokenizer(ref, path)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            path, num_labels=1, dtype=torch.float32, revision=ref.revision,
            trust_remote_code=ref.trust_remote_code)
    except Exception as err:
        raise BaseModelError(f"baseModel.uri: cannot load {ref.uri!r} as a reward model ({_short(err)})") from None
    # Pooling reads the last non-pad token: the model must know which id is padding.
    model.config.pad_token_id = tok.pad_token_id
    if head_init == "zero":
        zero_score_head(model, ref.uri)
    return tok, model


def zero_score_head(model: Any, uri: str) -> None:
    """Sets the final linear layer of the classifier head (``score``, or ``classifier`` / its
    ``out_proj``) to zero, so every reward starts at 0. Raises BaseModelError when there is none."""
    import torch

    head = getattr(model, "score", None) or getattr(model, "classifier", None)
    head = getattr(head, "out_proj", head)
    if not isinstance(head, torch.nn.Linear) or head.out_features != 1:
        raise BaseModelError(f"training.scoreHeadInit: zero needs a linear score head with one output, and"
                             f" {uri!r} ({type(model).__name__}) has none; use scoreHeadInit: normal")
    with torch.no_grad():
        head.weight.zero_()
        if head.bias is not None:
            head.bias.zero_()


def _short(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return (text[:400] + "...") if len(text) > 400 else text or type(err).__name__
