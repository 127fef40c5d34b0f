"""Finding and checking the labeler's files before an engine spends a minute failing to load them."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from rlaif_jobs.config.common import ModelRef
from rlaif_jobs.feedback.engines.base import EngineLoadError
from rlaif_jobs.models.resolve import resolve_model_uri

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase


def resolve_checked(ref: ModelRef, uri: str | None = None) -> str:
    """A local folder or hub id for ``uri`` (default ``ref.uri``); raises EngineLoadError naming it.

    A local folder must hold a ``config.json`` (or a tokenizer, when checking a tokenizer location):
    a wrong path fails here in one line instead of deep inside the engine.
    """
    uri = uri or ref.uri
    try:
        where = resolve_model_uri(uri)
    except Exception as err:  # ModelNotFoundError, ModelInstallError, an object store error
        raise EngineLoadError(f"labeler model {uri}: cannot load it ({err})") from None
    path = Path(where)
    if path.is_dir() and not any((path / f).exists() for f in ("config.json", "tokenizer_config.json")):
        raise EngineLoadError(f"labeler model {uri}: {path} holds no config.json; is it a model folder?")
    if path.exists() and not path.is_dir():
        raise EngineLoadError(f"labeler model {uri}: {path} is a file; point at the model's folder")
    return where


def resolve_weights(ref: ModelRef) -> str:
    """resolve_checked(ref), then for a builtin model asked for in bfloat16/float16: the copy of its
    weights stored in that dtype (models.dtype_copy; built once, beside the float32 folder)."""
    where = resolve_checked(ref)
    if ref.uri.startswith("builtin://"):
        from rlaif_jobs.models.dtype_copy import ensure_dtype_copy

        try:
            where = str(ensure_dtype_copy(Path(where), ref.dtype))
        except OSError as err:  # a full disk: the float32 folder still loads, converted at load time
            log.warning("labeler model %s: no %s copy of its weights (%s); loading the float32 files",
                        ref.uri, ref.dtype, err)
    return where


def load_tokenizer(ref: ModelRef, path: str) -> PreTrainedTokenizerBase:
    """The labeler's tokenizer (``ref.tokenizer`` if set, else the model's); raises EngineLoadError."""
    from transformers import AutoTokenizer

    where = resolve_checked(ref, ref.tokenizer) if ref.tokenizer else path
    try:
        tok = AutoTokenizer.from_pretrained(where, revision=ref.revision, trust_remote_code=ref.trust_remote_code)
    except Exception as err:  # OSError, ValueError, JSON errors: all mean "not a tokenizer"
        raise EngineLoadError(f"labeler model {ref.uri}: cannot load its tokenizer from {where} ({err})") from None
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok
