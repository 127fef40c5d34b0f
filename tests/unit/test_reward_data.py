"""Reading the labels file: required fields, pA in [0, 1], human labels, Parquet, the held-out split."""

from __future__ import annotations

import json

import pytest

from rlaif_jobs.errors import ConfigError
from rlaif_jobs.reward.data import PreferencesError, load_preferences, split_holdout


def write(path, records):
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return str(path)


def rec(i, p, **kw):
    return {"id": f"x{i}", "context": "c", "responseA": "a", "responseB": "b", "pA": p, **kw}


def test_reads_pairs_and_ignores_other_fields(tmp_path):
    uri = write(tmp_path / "l.jsonl", [
        rec(0, 0.9, humanPreference="a", task="summarization", pAOrderAB=0.8, chosen="a", labeler="m"),
        rec(1, 0, humanPreference=2),
        rec(2, 1, humanPreference=None),
        rec(3, "0.25"),
    ])
    pairs = load_preferences(uri)
    assert [(x.id, x.p, x.human) for x in pairs] == [("x0", 0.9, "a"), ("x1", 0.0, "b"), ("x2", 1.0, None),
                                                      ("x3", 0.25, None)]


@pytest.mark.parametrize(("p", "shown"), [(1.2, "1.2"), (-0.1, "-0.1"), ("NaN", "'NaN'"), ("high", "'high'")])
def test_p_outside_the_unit_interval_names_the_record_and_field(tmp_path, p, shown):
    uri = write(tmp_path / "l.jsonl", [rec(0, 0.5), rec(1, p)])
    with pytest.raises(PreferencesError, match=rf"^preferencesUri: .*record 2 \(id x1\): pA must be .*got {shown}"):
        load_preferences(uri)
    assert issubclass(PreferencesError, ConfigError)


def test_missing_empty_and_incomplete_files(tmp_path):
    with pytest.raises(PreferencesError, match=r"^preferencesUri: no such file .*nope.jsonl"):
        load_preferences(str(tmp_path / "nope.jsonl"))
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(PreferencesError, match=r"^preferencesUri: .*empty\.jsonl' is empty"):
        load_preferences(str(tmp_path / "empty.jsonl"))
    (tmp_path / "blank.jsonl").write_text("\n\n")
    with pytest.raises(PreferencesError, match=r"^preferencesUri: labels file .*blank\.jsonl: it holds no records"):
        load_preferences(str(tmp_path / "blank.jsonl"))
    uri = write(tmp_path / "l.jsonl", [{"id": 1, "context": "c", "responseA": "a", "pA": 0.5}])
    with pytest.raises(PreferencesError, match=r"missing field 'responseB'"):
        load_preferences(uri)


def test_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "labels.parquet"
    pq.write_table(pa.Table.from_pylist([rec(0, 0.7, humanPreference="b"), rec(1, 0.2)]), path)
    assert [(x.p, x.human) for x in load_preferences(str(path))] == [(0.7, "b"), (0.2, None)]


def test_holdout_split_is_deterministic_and_disjoint(tmp_path):
    uri = write(tmp_path / "l.jsonl", [rec(i, 0.5) for i in range(100)])
    pairs = load_preferences(uri)
    train, held = split_holdout(pairs, 0.1, seed=0)
    assert len(held) == 10 and len(train) == 90
    assert {x.id for x in train}.isdisjoint({x.id for x in held})
    assert split_holdout(list(reversed(pairs)), 0.1, seed=0)[1] == sorted(held, key=lambda x: -int(x.id[1:]))
    assert {x.id for x in split_holdout(pairs, 0.1, seed=1)[1]} != {x.id for x in held}
    assert split_holdout(pairs, 0.0) == (pairs, [])
    assert len(split_holdout(pairs[:3], 0.01)[1]) == 1  # at least one when asked for any
