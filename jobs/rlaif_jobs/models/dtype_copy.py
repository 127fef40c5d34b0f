"""A builtin model's weights stored once in the precision an engine asks for (bfloat16, float16).

The builtin models are built in float32. An engine that runs one in bfloat16 would otherwise read the
float32 files at every start and convert them: twice the bytes to read, and (transformers) the float32
file pages mapped next to the converted model, ~11 GB of resident memory at the peak for the 1.5B
labeler where the bfloat16 model is 3.1 GB. ``ensure_dtype_copy(folder, "bfloat16")`` writes the
converted copy once beside the folder (``NAME@bfloat16``), shard by shard (memory: one shard), under
the model's build lock, with a completion marker written last; later runs load it directly.

Only the cache's own builtin folders get a copy; a user's folder or a hub model is loaded as it is.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
from pathlib import Path

from rlaif_jobs.models.install import INDEX, MARKER, SINGLE, _build_lock

log = logging.getLogger(__name__)
HALF = {"bfloat16": "BF16", "float16": "F16"}  # dtype name -> safetensors dtype tag


def stored_dtype(folder: Path) -> str | None:
    """The dtype config.json records for the weights (``dtype`` or ``torch_dtype``), if any."""
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    return cfg.get("dtype") or cfg.get("torch_dtype")


def ensure_dtype_copy(folder: Path, dtype: str) -> Path:
    """``folder`` itself unless ``dtype`` is bfloat16/float16 and the weights are stored in float32;
    then the converted copy ``folder.parent / f"{folder.name}@{dtype}"``, built first if missing."""
    if dtype not in HALF or stored_dtype(folder) != "float32":
        return folder
    target = folder.with_name(f"{folder.name}@{dtype}")
    if (target / MARKER).exists():
        return target
    with _build_lock(f"{folder.name}@{dtype}"):
        if not (target / MARKER).exists():
            _convert(folder, target, dtype)
    return target


def _convert(folder: Path, target: Path, dtype: str) -> None:
    import torch
    from safetensors import safe_open
    from safetensors.torch import save_file

    log.info("writing %s in %s once (engines then load it directly): %s", folder.name, dtype, target)
    to = getattr(torch, dtype)
    work = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=folder.parent))
    try:
        out = work / "model"
        out.mkdir()
        shards = sorted(folder.glob("*.safetensors"))
        total = 0
        for item in folder.iterdir():
            if item.suffix != ".safetensors" and item.name not in (MARKER, INDEX, "config.json"):
                (shutil.copytree if item.is_dir() else shutil.copy2)(item, out / item.name)
        for shard in shards:
            tensors = {}
            with safe_open(str(shard), framework="pt") as f:
                for key in f.keys():  # noqa: SIM118 - safe_open is not a mapping
                    t = f.get_tensor(key)
                    tensors[key] = t.to(to) if t.is_floating_point() else t
                    total += tensors[key].numel() * tensors[key].element_size()
            save_file(tensors, str(out / shard.name), metadata={"format": "pt"})
            del tensors
        if (folder / INDEX).exists():
            index = json.loads((folder / INDEX).read_text())
            index.setdefault("metadata", {})["total_size"] = total
            (out / INDEX).write_text(json.dumps(index, indent=2) + "\n")
        elif not (folder / SINGLE).exists():
            raise FileNotFoundError(f"{folder}: no {SINGLE} or {INDEX}")
        cfg = json.loads((folder / "config.json").read_text())
        cfg["dtype" if "dtype" in cfg else "torch_dtype"] = dtype
        (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
        (out / MARKER).write_text(f"{folder.name} converted to {dtype}\n")
        if target.exists():
            shutil.rmtree(target)  # an incomplete earlier attempt
        out.rename(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
