"""A shard's output on disk or in an object store: resumable, and never a corrupt file.

Layout under the output folder (``output.uri``), for shard ``i`` of ``N``::

    shards/labels-0000i-of-0000N.parts/chunk-000000.jsonl   one per batch while the shard runs
    shards/labels-0000i-of-0000N.jsonl                       the shard's labels, when it finishes
    shards/abstained-0000i-of-0000N.jsonl                    its abstained and skipped records
    shards/stats-0000i-of-0000N.json                         counters; written last = "shard done"

Every file is written whole and atomically (a temporary file renamed over the target; one PUT on an
object store), so a kill at any moment leaves complete files and, at worst, a stray temporary file
(names starting with "."), which is ignored and cleaned up. Chunks rather than an appended file
because object stores cannot append. A restarted shard reads its chunks, skips the ids they hold and
carries on numbering chunks after the last one.

Chunk lines are ``{"status": "labeled" | "abstained" | "skipped", "position": N, "record": {...}}``,
then one ``{"status": "stats", ...counters}`` line.
"""

from __future__ import annotations

import json
import re
from typing import Any

from rlaif_jobs import io
from rlaif_jobs.errors import ConfigError

STAT_KEYS = ("labeled", "skipped", "abstained", "inputTokens", "outputTokens", "elapsedSeconds")


class StoreError(ConfigError):
    """The output folder holds something this run cannot continue from."""


def shard_name(kind: str, index: int, count: int, ext: str) -> str:
    return f"{kind}-{index:05d}-of-{count:05d}.{ext}"


def list_names(folder_uri: str) -> list[str]:
    """File names directly in a folder (local or fsspec), without hidden temporaries; [] if absent."""
    if io.is_remote(folder_uri):
        import fsspec

        fs, path = fsspec.core.url_to_fs(folder_uri)
        if not fs.exists(path):
            return []
        names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(path, detail=False)]
    else:
        folder = io.local_path(folder_uri)
        if not folder.is_dir():
            return []
        names = [p.name for p in folder.iterdir()]
    return sorted(n for n in names if not n.startswith("."))


def remove_tree(folder_uri: str) -> None:
    """Deletes a folder and everything in it (local or fsspec); no error if it is absent."""
    if io.is_remote(folder_uri):
        import fsspec

        fs, path = fsspec.core.url_to_fs(folder_uri)
        if fs.exists(path):
            fs.rm(path, recursive=True)
        return
    import shutil

    shutil.rmtree(io.local_path(folder_uri), ignore_errors=True)


def read_jsonl(uri: str) -> list[dict]:
    with io.open_read(uri) as f:
        return [json.loads(line) for line in f if line.strip()]


class ShardStore:
    """The files of one shard; see the module docstring."""

    _CHUNK = re.compile(r"^chunk-(\d{6})\.jsonl$")

    def __init__(self, output_uri: str, index: int, count: int) -> None:
        self.index, self.count = index, count
        self.shards = io.join(output_uri, "shards")
        self.parts = io.join(self.shards, shard_name("labels", index, count, "parts"))
        self.labels_uri = io.join(self.shards, shard_name("labels", index, count, "jsonl"))
        self.abstained_uri = io.join(self.shards, shard_name("abstained", index, count, "jsonl"))
        self.stats_uri = io.join(self.shards, shard_name("stats", index, count, "json"))
        self._next_chunk = 0

    # -- state -----------------------------------------------------------------------------------
    def finished_stats(self) -> dict | None:
        """The shard's stats if it already finished, else None."""
        return io.read_json(self.stats_uri) if io.exists(self.stats_uri) else None

    def read_chunks(self, prompt_hash: str) -> tuple[list[dict], dict[str, float]]:
        """(entries written so far, summed counters); raises StoreError on other prompt settings."""
        entries: list[dict] = []
        totals = dict.fromkeys(STAT_KEYS, 0.0)
        self._next_chunk = 0
        for name in list_names(self.parts):
            m = self._CHUNK.match(name)
            if not m:
                continue
            lines = read_jsonl(io.join(self.parts, name))
            stats = lines[-1] if lines and lines[-1].get("status") == "stats" else None
            if stats is None:  # cannot happen with atomic writes; refuse rather than guess
                raise StoreError(f"{io.join(self.parts, name)} has no stats line; delete it to relabel its records")
            _check_hash(stats.get("promptHash"), prompt_hash, self.parts)
            entries.extend(lines[:-1])
            for key in STAT_KEYS:
                totals[key] += float(stats.get(key, 0))
            self._next_chunk = max(self._next_chunk, int(m.group(1)) + 1)
        return entries, totals

    # -- writing ---------------------------------------------------------------------------------
    def write_chunk(self, entries: list[dict], stats: dict[str, Any]) -> str:
        """Writes one batch's entries plus its stats line atomically; returns the chunk's URI."""
        uri = io.join(self.parts, f"chunk-{self._next_chunk:06d}.jsonl")
        io.write_jsonl(uri, [*entries, {"status": "stats", **stats}])
        self._next_chunk += 1
        return uri

    def finalize(self, entries: list[dict], totals: dict[str, float], extra: dict[str, Any]) -> dict:
        """Writes the shard's labels, abstained records and stats (last), then drops the chunks."""
        entries = sorted(entries, key=lambda e: e["position"])
        io.write_jsonl(self.labels_uri, (e["record"] for e in entries if e["status"] == "labeled"))
        io.write_jsonl(self.abstained_uri, (e["record"] for e in entries if e["status"] != "labeled"))
        stats = {**totals, **extra, "shardIndex": self.index, "numShards": self.count}
        io.write_json(self.stats_uri, stats)
        remove_tree(self.parts)
        return stats


def _check_hash(found: str | None, expected: str, where: str) -> None:
    if found != expected:
        raise StoreError(f"{where} holds labels made with other prompt settings (promptHash {found}, this run"
                         f" {expected}); use another output.uri, or delete the old output to relabel")


def check_finished_hash(stats: dict, prompt_hash: str, where: str) -> None:
    """Raises StoreError if a finished shard was labeled with other prompt settings."""
    _check_hash(stats.get("promptHash"), prompt_hash, where)
