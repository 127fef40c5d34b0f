"""The PreferenceLabelJob workload: label one shard, and merge the shards into labels + summary.

``main(config)`` labels this process's shard (index from ``--shard-index``, ``shardIndex``, the
``JOB_COMPLETION_INDEX`` of an Indexed Job, else 0), resuming from whatever an earlier attempt wrote;
with one shard it then merges, so a local run is one command. ``merge(config)`` joins the finished
shards into ``labels.jsonl`` (or ``.parquet``), ``abstained.jsonl`` and ``summary.json``; it gives the
same labels as a single shard, because shards are contiguous slices of the dataset, kept in order.
The merge also writes ``dpo.jsonl`` (the labels as prompt/chosen/rejected pairs: rlaif_jobs.dpo_export).
"""

from __future__ import annotations

import logging
import os
import time
from typing import Any

from rlaif_jobs import io, progress, summaries
from rlaif_jobs.config.label import LabelConfig
from rlaif_jobs.data import DatasetError, load_records
from rlaif_jobs.dpo_export import DPO_FILE, OUTPUT_DPO, dpo_records
from rlaif_jobs.errors import RetryableError
from rlaif_jobs.feedback import prompts as P
from rlaif_jobs.feedback.engines import Engine, open_engine
from rlaif_jobs.feedback.pairwise import PairJudge
from rlaif_jobs.label import metrics as M
from rlaif_jobs.label.entries import label_batch
from rlaif_jobs.label.store import STAT_KEYS, ShardStore, StoreError, check_finished_hash, read_jsonl, shard_name

log = logging.getLogger("rlaif_jobs.label")
REQUIRED = ["context", "responseA", "responseB"]
OPTIONAL = ("humanPreference", "task")
SHARD_ENV = "JOB_COMPLETION_INDEX"


class MergeError(RetryableError):
    """Shards are missing or unfinished: the merge cannot give the full labels yet."""


def shard_index_for(config: LabelConfig, override: int | None = None) -> int:
    """This process's shard: the override, else config.shardIndex, else $JOB_COMPLETION_INDEX, else 0."""
    if override is not None:
        index = override
    elif config.shard_index is not None:
        index = config.shard_index
    elif os.environ.get(SHARD_ENV, "").strip():
        raw = os.environ[SHARD_ENV].strip()
        if not raw.isdigit():
            raise DatasetError(f"{SHARD_ENV}={raw!r} is not a shard number")
        index = int(raw)
    else:
        index = 0
    if not 0 <= index < config.num_shards:
        raise DatasetError(f"shard index {index} is outside numShards {config.num_shards}")
    return index


def shard_bounds(total: int, index: int, count: int) -> tuple[int, int]:
    """[start, end) of shard ``index``'s contiguous slice; sizes differ by at most one record."""
    return total * index // count, total * (index + 1) // count


def load_pairs(config: LabelConfig) -> list[dict]:
    """The dataset's records with our field names; raises DatasetError (also on duplicate ids)."""
    records = load_records(config.dataset, REQUIRED, OPTIONAL)
    seen: dict[str, int] = {}
    for n, rec in enumerate(records):
        if rec["id"] in seen:
            raise DatasetError(f"dataset {config.dataset.uri}: id {rec['id']!r} appears twice (records"
                               f" {seen[rec['id']] + 1} and {n + 1}); ids must be unique to resume and merge")
        seen[rec["id"]] = n
    return records


def main(config: LabelConfig, *, engine: Engine | None = None, shard_index: int | None = None) -> dict | None:
    """Labels this shard (resuming), then merges if there is one shard. Returns the summary or shard stats.

    ``engine``: an engine to use instead of building one from ``config.labeler`` (it is not closed).
    Raises DatasetError for bad input, EngineLoadError for a labeler that cannot load,
    EndpointUnavailableError for an endpoint that is down (the Job retries), StoreError for an output
    folder written with other prompt settings.
    """
    index = shard_index_for(config, shard_index)
    records = load_pairs(config)
    start, end = shard_bounds(len(records), index, config.num_shards)
    store = ShardStore(config.output.uri, index, config.num_shards)
    prompt_hash = P.prompt_hash(config.prompt, config.labeler.model.uri, config.labeler.use_chat_template,
                                config.labeler.api)

    stats = store.finished_stats()
    if stats is not None:
        check_finished_hash(stats, prompt_hash, store.stats_uri)
        log.info("shard %d/%d already finished (%s); nothing to label", index, config.num_shards, store.stats_uri)
    else:
        stats = _label_shard(config, engine, store, records[start:end], start, prompt_hash)
    if config.num_shards == 1:
        return merge(config)
    return stats


def _label_shard(config: LabelConfig, engine: Engine | None, store: ShardStore, records: list[dict],
                 offset: int, prompt_hash: str) -> dict:
    entries, totals = store.read_chunks(prompt_hash)
    done = {e["record"]["id"] for e in entries}
    todo = [(offset + i, r) for i, r in enumerate(records) if r["id"] not in done]
    log.info("shard %d/%d: %d records, %d already written, %d to label", store.index, store.count,
             len(records), len(done), len(todo))
    extra: dict[str, Any] = {"promptHash": prompt_hash, "labeler": config.labeler.model.uri}
    own = engine is None and bool(todo)
    if own:
        t0 = time.perf_counter()
        progress.report("loading the labeler", 0)
        engine = open_engine(config.labeler, "labeler")
        extra["engineLoadSeconds"] = time.perf_counter() - t0
    try:
        if todo:
            assert engine is not None
            judge = PairJudge(engine, config.prompt, config.labeler.use_chat_template, config.labeler.max_model_len)
            size = config.labeler.batch_size
            progress.report("labeling", len(entries), len(records), "pairs")
            for b in range(0, len(todo), size):
                batch = todo[b:b + size]
                t0 = time.perf_counter()
                new, usage = label_batch(judge, config, prompt_hash, [r for _, r in batch], [p for p, _ in batch])
                chunk = {k: sum(e["status"] == k for e in new) for k in ("labeled", "skipped", "abstained")}
                chunk.update(inputTokens=usage.input_tokens, outputTokens=usage.output_tokens,
                             elapsedSeconds=time.perf_counter() - t0, promptHash=prompt_hash)
                store.write_chunk(new, chunk)
                entries.extend(new)
                for key in STAT_KEYS:
                    totals[key] += float(chunk[key])
                progress.report("labeling", len(entries), len(records), "pairs")
                log.info("shard %d: %d/%d records (%.1f pairs/s)", store.index, len(entries), len(records),
                         len(batch) / max(chunk["elapsedSeconds"], 1e-9))
    finally:
        if own and engine is not None:
            engine.close()
    return store.finalize(entries, totals, extra)


def labels_uri(config: LabelConfig) -> str:
    return io.join(config.output.uri, f"labels.{config.output_format}")


def merge(config: LabelConfig) -> dict:
    """Joins all finished shards into the labels file, abstained.jsonl and summary.json; returns the summary."""
    stores = [ShardStore(config.output.uri, i, config.num_shards) for i in range(config.num_shards)]
    missing = [s.index for s in stores if s.finished_stats() is None]
    if missing:
        shown = ", ".join(map(str, missing[:20])) + (" ..." if len(missing) > 20 else "")
        raise MergeError(f"{len(missing)} of {config.num_shards} shards have not finished (shard {shown});"
                         f" no {shard_name('stats', missing[0], config.num_shards, 'json')} in"
                         f" {io.join(config.output.uri, 'shards')}")
    labels: list[dict] = []
    others: list[dict] = []
    shard_stats = []
    for store in stores:
        shard_stats.append(store.finished_stats() or {})
        labels.extend(read_jsonl(store.labels_uri))
        others.extend(read_jsonl(store.abstained_uri))
    hashes = {s.get("promptHash") for s in shard_stats}
    if len(hashes) > 1:
        raise MergeError(f"shards were labeled with different prompt settings (promptHash {sorted(map(str, hashes))})")
    ids = [r["id"] for r in labels] + [r["id"] for r in others]
    if len(ids) != len(set(ids)):
        raise MergeError("shards overlap: some ids appear in more than one shard; was numShards changed?")

    out = labels_uri(config)
    _write_labels(out, labels, config.output_format)
    abstained_uri = io.join(config.output.uri, "abstained.jsonl")
    io.write_jsonl(abstained_uri, others)
    dpo_uri = io.join(config.output.uri, DPO_FILE)  # ties (pA 0.5) carry no preference: left out, counted
    dpo, dpo_counts = dpo_records(labels)
    io.write_jsonl(dpo_uri, dpo)

    totals = {k: sum(float(s.get(k, 0)) for s in shard_stats) for k in STAT_KEYS}
    # shards run in parallel: the job took as long as its slowest shard
    elapsed = max(float(s.get("elapsedSeconds", 0)) for s in shard_stats)
    metrics: dict[str, Any] = {
        "labeled": len(labels), "skipped": int(totals["skipped"]), "abstained": int(totals["abstained"]),
        "inputTokens": int(totals["inputTokens"]), "outputTokens": int(totals["outputTokens"]),
        "elapsedSeconds": elapsed, "pairsPerSecond": len(labels) / elapsed if elapsed > 0 else 0.0,
        "dpoPairs": dpo_counts["pairs"], "dpoTies": dpo_counts["ties"],
    }
    agreement, judged = M.alignment(labels)
    if agreement is not None:
        metrics["alignment"] = agreement
        metrics["humanLabeled"] = judged
    for key, value in (("samePositionRate", M.same_position_rate(labels)),
                       ("meanConfidence", M.mean_confidence(labels))):
        if value is not None:
            metrics[key] = value
    def inverted(label: dict) -> bool:  # asked for the worse candidate (harmless)
        return P.template_for(config.prompt, P.record_task(config.prompt, label)).inverted

    # which position the labeler names among same-position pairs (paper: first 94% / second 91-99%)
    winners = M.same_position_winners(labels, inverted)
    if winners is not None:
        metrics["samePositionFirstShare"] = winners["first"]
        metrics["samePositionSecondShare"] = winners["second"]
    by_task = M.alignment_by_task(labels)
    if labels or others:
        metrics["meanInputTokensPerPair"] = totals["inputTokens"] / max(1, len(labels) + int(totals["abstained"]))
    reasons: dict[str, int] = {}
    for r in others:
        reasons[r["reason"]] = reasons.get(r["reason"], 0) + 1
    extra = {"promptHash": next(iter(hashes)), "labeler": config.labeler.model.uri, "alignmentByTask": by_task,
             "numShards": config.num_shards, "abstainReasons": dict(sorted(reasons.items())[:50])}
    summary = summaries.write_summary(config.output.uri, "label",
                                   {summaries.OUTPUT_LABELS: out, "abstained": abstained_uri, OUTPUT_DPO: dpo_uri,
                                    "summary": summaries.summary_uri(config.output.uri)}, metrics, extra)
    log.info("merged %d shards: %d labeled, %d skipped, %d abstained -> %s", config.num_shards, len(labels),
             metrics["skipped"], metrics["abstained"], out)
    return summary


def _write_labels(uri: str, labels: list[dict], fmt: str) -> None:
    if fmt == "jsonl":
        io.write_jsonl(uri, labels)
        return
    import pyarrow as pa
    import pyarrow.parquet as pq

    columns = ["id", "task", "context", "responseA", "responseB", "pA", "pAOrderAB", "pAOrderBA", "chosen",
               "humanPreference", "rationale", "rationaleOrderBA", "labeler", "promptHash"]
    types = {"pA": pa.float64(), "pAOrderAB": pa.float64(), "pAOrderBA": pa.float64()}
    table = pa.table({c: pa.array([r.get(c) for r in labels], type=types.get(c, pa.string())) for c in columns})
    with io.atomic_open(uri, "wb") as f:
        pq.write_table(table, f)


__all__ = ["MergeError", "StoreError", "load_pairs", "main", "merge", "shard_bounds", "shard_index_for"]
