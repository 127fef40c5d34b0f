"""Reads datasets (JSONL, JSON, Parquet, CSV, or a hub dataset) into records with our field names.

Input: a DatasetRef (URI, format, field mapping, split, limit) and the fields a stage needs.
Output: a list of dicts keyed by our names (``id``, ``context``, ``responseA``, ``responseB``,
``humanPreference``, ``prompt``). Every problem raises DatasetError naming the file, the record's
line and the field, e.g. ``pairs.jsonl line 7: missing field 'responseB' (source column 'summary_2')``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path, PurePosixPath
from typing import Any

from rlaif_jobs import io
from rlaif_jobs.config.common import DatasetRef
from rlaif_jobs.errors import ConfigError


class DatasetError(ConfigError):
    """A dataset that cannot be read or lacks what the stage needs."""


BUILTIN_DATASETS = Path(__file__).parent / "datasets"


def builtin_dataset_path(uri: str) -> Path:
    """``builtin://datasets/NAME`` -> the JSONL file the project ships (see rlaif_jobs/datasets/)."""
    name = uri.removeprefix("builtin://").removeprefix("datasets/")
    path = BUILTIN_DATASETS / f"{name}.jsonl"
    if not path.exists():
        known = sorted(p.stem for p in BUILTIN_DATASETS.glob("*.jsonl"))
        raise DatasetError(f"dataset {uri}: no such builtin dataset; known: {', '.join(known) or 'none'}")
    return path


def resolved_uri(uri: str) -> str:
    """The URI to open: builtin datasets become their shipped file, everything else stays."""
    return str(builtin_dataset_path(uri)) if uri.startswith("builtin://") else uri


def detect_format(ref: DatasetRef) -> str:
    """The format to read: the explicit one, else from the URI's extension (hf:// means a hub dataset)."""
    if ref.format != "auto":
        return ref.format
    if ref.uri.startswith("hf://"):
        return "hf"
    if ref.uri.startswith("builtin://"):
        return "jsonl"
    suffixes = PurePosixPath(ref.uri.split("?")[0]).suffixes
    for suffix in reversed(suffixes):
        fmt = {".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "json", ".parquet": "parquet",
               ".csv": "csv"}.get(suffix)
        if fmt:
            return fmt
    raise DatasetError(f"dataset {ref.uri}: cannot tell the format from the name; set dataset.format"
                       " to jsonl, json, parquet, csv or hf")


def _read_raw(ref: DatasetRef, fmt: str) -> list[tuple[int, Any]]:
    """[(line or row number, raw record)] in file order."""
    if fmt == "hf":
        return _read_hub(ref)
    uri = resolved_uri(ref.uri)
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            with io.open_read(uri, "rb") as f:
                rows = pq.read_table(f).to_pylist()
            return list(enumerate(rows, start=1))
        with io.open_read(uri) as f:
            if fmt == "jsonl":
                out = []
                for n, line in enumerate(f, start=1):
                    if not line.strip():
                        continue
                    try:
                        out.append((n, json.loads(line)))
                    except json.JSONDecodeError as err:
                        raise DatasetError(f"{ref.uri} line {n}: not valid JSON ({err.msg})") from None
                return out
            if fmt == "json":
                data = json.load(f)
                if not isinstance(data, list):
                    raise DatasetError(f"{ref.uri}: a .json dataset must hold a list of records")
                return list(enumerate(data, start=1))
            if fmt == "csv":
                return list(enumerate(csv.DictReader(f), start=2))  # line 1 is the header
    except (OSError, UnicodeDecodeError) as err:
        raise DatasetError(f"dataset {ref.uri}: cannot read it ({err})") from None
    except json.JSONDecodeError as err:
        raise DatasetError(f"dataset {ref.uri}: not valid JSON ({err.msg})") from None
    raise DatasetError(f"dataset {ref.uri}: unsupported format {fmt!r}")


def _read_hub(ref: DatasetRef) -> list[tuple[int, Any]]:
    try:
        import datasets
    except ImportError:
        raise DatasetError("hub datasets need the `datasets` package: install rlaif's cpu or cuda extra"
                           " (the workload images have it)") from None
    name = ref.uri.removeprefix("hf://")
    try:
        ds = datasets.load_dataset(name, ref.subset, split=ref.split, revision=ref.revision)
    except Exception as err:  # the hub raises many types; all mean "cannot read it"
        hint = ""
        if "script" in str(err).lower() and ref.revision is None:
            hint = "; it has a loading script, which datasets 4 and later refuse: set revision: refs/convert/parquet"
        raise DatasetError(f"dataset {ref.uri}: cannot load it from the hub ({err}){hint}") from None
    return list(enumerate(ds, start=1))


def _lookup(row: dict, column: str) -> Any:
    """row[column], where a dotted column reaches into nested dicts and lists (summaries.0.text)."""
    if column in row:
        return row[column]
    value: Any = row
    for part in column.split("."):
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]
        else:
            return None
    return value


def normalize_preference(value: Any, index_base: int = 1) -> str | None:
    """A human label as 'a' or 'b' (None if absent or unreadable): accepts a/b, 1/2, or 0/1 with base 0."""
    text = str(value).strip().lower()
    if text in ("a", "b"):
        return text
    if text.lstrip("-").isdigit():
        n = int(text) - index_base
        return {0: "a", 1: "b"}.get(n)
    return None


def load_records(ref: DatasetRef, required: list[str], optional: tuple[str, ...] = ()) -> list[dict]:
    """Reads the dataset and maps it onto our field names.

    Inputs: the reference, the fields every record must have, and optional fields to carry. An
    ``id`` is always produced (the source's, else the record's position). Raises DatasetError.
    """
    fmt = detect_format(ref)
    raw = _read_raw(ref, fmt)
    if not raw:
        raise DatasetError(f"dataset {ref.uri}: it holds no records")
    unknown = set(ref.fields) - set(required) - set(optional) - {"id"}
    if unknown:
        raise DatasetError(f"dataset.fields: unknown field name(s) {sorted(unknown)}; this stage reads"
                           f" {sorted({'id', *required, *optional})}")
    where = "line" if fmt in ("jsonl", "csv") else "record"
    wanted = set(ref.tasks) if ref.tasks else None
    task_column = ref.fields.get("task", "task")
    records = []
    for position, (n, row) in enumerate(raw):
        if not isinstance(row, dict):
            raise DatasetError(f"{ref.uri} {where} {n}: expected an object, got {type(row).__name__}")
        if wanted is not None and _lookup(row, task_column) not in wanted:
            continue
        record: dict[str, Any] = {}
        for name in ("id", *required, *optional):
            column = ref.fields.get(name, name)
            value = _lookup(row, column)
            if value is not None:
                record[name] = value
            elif name in required:
                hint = f" (source column {column!r})" if column != name else ""
                raise DatasetError(f"{ref.uri} {where} {n}: missing field {name!r}{hint}; map it with"
                                   f" dataset.fields.{name}")
        record["id"] = str(record.get("id", position))
        records.append(record)
        if ref.limit is not None and len(records) >= ref.limit:
            break
    if not records:  # only a tasks filter can empty a non-empty file
        seen = sorted({str(_lookup(row, task_column)) for _, row in raw if isinstance(row, dict)})
        raise DatasetError(f"dataset.tasks: no record of {ref.uri} has a task in {sorted(wanted or [])}; its"
                           f" tasks are {seen}")
    return records
