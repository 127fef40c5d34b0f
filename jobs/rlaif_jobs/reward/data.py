"""Reads the labeling stage's labels file into preference pairs, and splits off the held-out set.

Each record needs ``context``, ``responseA``, ``responseB`` and ``pA`` (P(a preferred), a number in
[0, 1]); ``humanPreference`` ('a'/'b', 1/2, or null) is optional and used for evaluation only; other
fields (task, pAOrderAB, chosen, rationale, ...) are ignored. Every problem raises PreferencesError (a
ConfigError: exit code 3) naming ``preferencesUri``, the line and the field.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass

from rlaif_jobs import io
from rlaif_jobs.config.common import DatasetRef
from rlaif_jobs.data import DatasetError, load_records, normalize_preference
from rlaif_jobs.errors import ConfigError


class PreferencesError(ConfigError):
    """A labels file the reward model cannot train on."""


@dataclass(frozen=True)
class PreferencePair:
    """One labeled pair: the context, both responses, the soft label p = P(a preferred), and the human
    label ('a', 'b') where the data has one."""

    id: str
    context: str
    response_a: str
    response_b: str
    p: float
    human: str | None = None


def load_preferences(uri: str) -> list[PreferencePair]:
    """The pairs of a JSONL/JSON/Parquet/CSV labels file; raises PreferencesError naming the problem."""
    if not io.is_remote(uri) and not uri.startswith(("builtin://", "hf://")):
        path = io.local_path(uri)
        if not path.exists():
            raise PreferencesError(f"preferencesUri: no such file {uri!r} (the labeling stage's labels file)")
        if path.is_file() and path.stat().st_size == 0:
            raise PreferencesError(f"preferencesUri: {uri!r} is empty: it holds no labeled pairs")
    ref = DatasetRef(uri=uri)
    try:
        records = load_records(ref, required=["context", "responseA", "responseB", "pA"],
                               optional=("humanPreference",))
    except DatasetError as err:
        msg = str(err).replace("; map it with dataset.fields.", "; the labeling stage writes field ")
        msg = "labels file " + msg.removeprefix("dataset ") if msg.startswith("dataset ") else msg
        raise PreferencesError(f"preferencesUri: {msg}") from None
    pairs = []
    for n, rec in enumerate(records, start=1):
        where = f"preferencesUri: {uri} record {n} (id {rec['id']})"
        p = rec["pA"]
        if isinstance(p, bool) or not isinstance(p, (int, float)):
            try:
                p = float(p)
            except (TypeError, ValueError):
                raise PreferencesError(f"{where}: pA must be a number in [0, 1], got {rec['pA']!r}") from None
        p = float(p)
        if not math.isfinite(p) or not 0.0 <= p <= 1.0:
            raise PreferencesError(f"{where}: pA must be a probability in [0, 1], got {rec['pA']!r}")
        for field in ("context", "responseA", "responseB"):
            if not isinstance(rec[field], str):
                raise PreferencesError(f"{where}: {field} must be text, got {type(rec[field]).__name__}")
        human = normalize_preference(rec["humanPreference"]) if rec.get("humanPreference") is not None else None
        pairs.append(PreferencePair(id=rec["id"], context=rec["context"], response_a=rec["responseA"],
                                    response_b=rec["responseB"], p=p, human=human))
    return pairs


def split_holdout(pairs: list[PreferencePair], fraction: float, seed: int = 0
                  ) -> tuple[list[PreferencePair], list[PreferencePair]]:
    """(train, held-out): a deterministic split by a hash of (seed, id), the same on every rank and
    every restart. The held-out share is ``fraction`` of the pairs (rounded, at least one when
    fraction > 0 and there are two or more pairs)."""
    if fraction <= 0 or len(pairs) < 2:
        return list(pairs), []
    n_eval = min(len(pairs) - 1, max(1, round(fraction * len(pairs))))
    ranked = sorted(pairs, key=lambda x: hashlib.sha256(f"{seed}:{x.id}".encode()).hexdigest())
    held = {id(x) for x in ranked[:n_eval]}
    return [x for x in pairs if id(x) not in held], [x for x in pairs if id(x) in held]
