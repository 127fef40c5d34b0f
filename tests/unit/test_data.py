"""Dataset reading: formats, field mapping, builtin datasets, and errors that name field and line."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rlaif_jobs.config.common import DatasetRef
from rlaif_jobs.data import DatasetError, load_records, normalize_preference
from rlaif_jobs.io import atomic_open, write_jsonl

PAIR = ["context", "responseA", "responseB"]


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_jsonl_with_field_mapping_and_dotted_paths(tmp_path):
    uri = _jsonl(tmp_path / "tldr.jsonl", [
        {"info": {"id": "p1", "post": "text"}, "summaries": [{"text": "s1"}, {"text": "s2"}], "choice": 1},
    ])
    ref = DatasetRef(uri=uri, fields={"id": "info.id", "context": "info.post", "responseA": "summaries.0.text",
                                      "responseB": "summaries.1.text", "humanPreference": "choice"},
                     preference_index_base=0)
    (rec,) = load_records(ref, PAIR, ("humanPreference",))
    assert rec == {"id": "p1", "context": "text", "responseA": "s1", "responseB": "s2", "humanPreference": 1}
    assert normalize_preference(rec["humanPreference"], ref.preference_index_base) == "b"


def test_parquet_csv_and_limit(tmp_path):
    rows = [{"context": f"c{i}", "responseA": "a", "responseB": "b"} for i in range(5)]
    pq.write_table(pa.Table.from_pylist(rows), tmp_path / "pairs.parquet")
    assert len(load_records(DatasetRef(uri=str(tmp_path / "pairs.parquet"), limit=3), PAIR)) == 3
    (tmp_path / "pairs.csv").write_text("context,responseA,responseB\nc,a,b\n")
    assert load_records(DatasetRef(uri=str(tmp_path / "pairs.csv")), PAIR)[0]["id"] == "0"


def test_missing_field_names_the_field_the_line_and_the_fix(tmp_path):
    uri = _jsonl(tmp_path / "pairs.jsonl", [{"context": "c", "responseA": "a", "responseB": "b"},
                                            {"context": "c", "responseA": "a"}])
    with pytest.raises(DatasetError, match=r"pairs.jsonl line 2: missing field 'responseB'.*dataset.fields.responseB"):
        load_records(DatasetRef(uri=uri), PAIR)


def test_empty_unreadable_and_malformed_datasets(tmp_path):
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DatasetError, match="holds no records"):
        load_records(DatasetRef(uri=str(tmp_path / "empty.jsonl")), PAIR)
    with pytest.raises(DatasetError, match="cannot read it"):
        load_records(DatasetRef(uri=str(tmp_path / "absent.jsonl")), PAIR)
    (tmp_path / "bad.jsonl").write_text('{"context": "c"}\n{not json\n')
    with pytest.raises(DatasetError, match="line 2: not valid JSON"):
        load_records(DatasetRef(uri=str(tmp_path / "bad.jsonl")), PAIR)
    with pytest.raises(DatasetError, match="cannot tell the format"):
        load_records(DatasetRef(uri=str(tmp_path / "pairs.txt")), PAIR)
    with pytest.raises(DatasetError, match="no such builtin dataset"):
        load_records(DatasetRef(uri="builtin://datasets/nope"), PAIR)


def test_unknown_field_mapping_is_named(tmp_path):
    uri = _jsonl(tmp_path / "p.jsonl", [{"context": "c", "responseA": "a", "responseB": "b"}])
    with pytest.raises(DatasetError, match=r"dataset.fields: unknown field name\(s\) \['respA'\]"):
        load_records(DatasetRef(uri=uri, fields={"respA": "x"}), PAIR)


@pytest.mark.parametrize("value,base,expected", [
    ("a", 1, "a"), ("B", 1, "b"), (1, 1, "a"), (2, 1, "b"), ("2", 1, "b"), (0, 0, "a"), (1, 0, "b"),
    (3, 1, None), (None, 1, None), ("tie", 1, None),
])
def test_normalize_preference(value, base, expected):
    assert normalize_preference(value, base) == expected


def test_atomic_write_leaves_old_content_when_interrupted(tmp_path):
    target = tmp_path / "out.jsonl"
    write_jsonl(str(target), [{"n": 1}])
    with pytest.raises(RuntimeError), atomic_open(str(target)) as f:
        f.write('{"n": 2}\n')
        raise RuntimeError("killed halfway")
    assert target.read_text() == '{"n": 1}\n'
    assert [p.name for p in tmp_path.iterdir()] == ["out.jsonl"]  # no temporary file left behind


def test_a_hub_dataset_that_cannot_be_loaded_names_its_uri(monkeypatch):
    """hf:// reads through the real `datasets` library (now in the cpu and cuda extras); what the hub
    cannot give is a DatasetError naming the URI (no hub here: offline)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ref = DatasetRef(uri="hf://rlaif/no-such-dataset", subset="comparisons", revision="refs/convert/parquet")
    with pytest.raises(DatasetError, match="dataset hf://rlaif/no-such-dataset: cannot load it from the hub"):
        load_records(ref, PAIR)
