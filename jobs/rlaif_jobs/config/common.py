"""Types shared by every stage: where models, data and outputs live.

A URI names every location so the same config runs on a laptop, a cluster volume or an object store:
- ``builtin://NAME``: a small model the project installs from a registry package (tests, CPU runs);
- ``hf://ORG/NAME`` or ``ORG/NAME``: a Hugging Face Hub repository (clusters with hub access);
- ``s3://``, ``gs://``, ``az://``, ``https://``: object stores, read through fsspec;
- ``/abs/path`` or ``file:///abs/path`` or a relative path: a local folder or a mounted volume.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from rlaif_jobs.config.base import CamelModel

URI_SCHEMES = ("builtin", "hf", "s3", "gs", "gcs", "az", "abfs", "http", "https", "file")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*)://")

def check_uri(value: str) -> str:
    """Accepts a URI with a known scheme, a hub id or a path; rejects an unknown scheme, naming the known."""
    m = _SCHEME.match(value)
    if m and m.group(1) not in URI_SCHEMES:
        raise ValueError(
            f"unknown URI scheme {m.group(1)!r}; use one of {', '.join(s + '://' for s in URI_SCHEMES)}"
            " or a plain path"
        )
    return value


Uri = Annotated[
    str,
    Field(
        min_length=1,
        max_length=2048,
        description="A location: see the URI rules.",
        # The CRD carries the scheme rule as a pattern; pydantic runs check_uri for a clearer message.
        json_schema_extra={"pattern": r"^((builtin|hf|s3|gs|gcs|az|abfs|https?|file)://.+|[^:]+)$"},
    ),
    AfterValidator(check_uri),
]

Dtype = Literal["auto", "float32", "bfloat16", "float16"]


class ModelRef(CamelModel):
    """A model to load: a hub id, an object-store URI, a path on a volume, or a builtin test model."""

    uri: Uri = Field(description="Where the model is: builtin://, hf://ORG/NAME, s3://, gs://, or a path.")
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit) for hf:// models.")
    dtype: Dtype = Field("auto", description="Weights' precision when loaded; auto keeps the checkpoint's.")
    tokenizer: str | None = Field(None, description="A different tokenizer location; default: the model's.")
    trust_remote_code: bool = Field(False, description="Allow custom modeling code shipped with the model.")


DataFormat = Literal["auto", "jsonl", "json", "parquet", "csv", "hf"]


class DatasetRef(CamelModel):
    """A dataset: where it is, how to read it, and which source columns map to our field names."""

    uri: Uri = Field(description="A file or folder (path, s3://, gs://, ...) or hf://ORG/NAME for a hub dataset.")
    format: DataFormat = Field("auto", description="File format; auto picks it from the file extension.")
    split: str = Field("train", description="Dataset split for hub datasets.")
    subset: str | None = Field(None, description="Hub dataset configuration name, if it has several.")
    revision: str | None = Field(None, description="Hub dataset revision: a branch, tag or commit. A dataset"
                                 " that still ships a loading script (datasets 4 and later refuse those) can"
                                 " load from the Hub's Parquet conversion: refs/convert/parquet.")
    limit: int | None = Field(None, ge=1, description="Read at most this many records (after any shard and tasks).")
    tasks: list[str] | None = Field(
        None, min_length=1, description="Keep only the records whose task field is one of these (e.g."
        " [summarization]); applied before limit. A record without a task field is dropped.")
    fields: dict[str, str] = Field(
        default_factory=dict,
        description="Maps our field names (id, context, responseA, responseB, humanPreference, prompt, task,"
        " group (the item a prompt is about: held-out splits keep items whole), and the oracle's ground truth"
        " answer, keyFact, mustDecline, wrong) to the source's column names, e.g."
        " {context: post, responseA: summary_1}; dotted paths reach into nested records (info.post,"
        " summaries.0.text).",
    )
    preference_index_base: Literal[0, 1] = Field(
        1, description="humanPreference numbering: 1 means 1/2 (a/b), 0 means 0/1 (TL;DR's choice)."
    )


class OutputSpec(CamelModel):
    """Where a stage writes its artifacts: a folder path or an object-store prefix."""

    uri: Uri = Field(description="Output folder or prefix (path, s3://, gs://); created if missing.")


class SecretKeyRef(CamelModel):
    """A key inside a Kubernetes Secret; in local mode, an environment variable of the same name as key."""

    name: str = Field(min_length=1, description="Secret name, in the resource's namespace.")
    key: str = Field(min_length=1, description="Key within the Secret.")


Precision = Literal["fp32", "bf16", "fp16"]
_DTYPE_NAMES = {"fp32": "float32", "bf16": "bfloat16", "fp16": "float16"}


def dtype_name(value: str) -> str:
    """The torch dtype name ('float32', 'bfloat16', 'float16') for a Precision ('fp32', 'bf16', 'fp16')
    or for that name itself: the one map from the configs' spellings to torch's. ValueError otherwise."""
    name = _DTYPE_NAMES.get(value, value)
    if name not in _DTYPE_NAMES.values():
        raise ValueError(f"unknown dtype {value!r}; use fp32, bf16 or fp16 (or float32, bfloat16, float16)")
    return name
