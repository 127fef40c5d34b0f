"""Stage 1, the PreferenceLabelJob workload: an LLM labels which of two responses is better.

``python -m rlaif_jobs.label --config FILE``; the library entry points are ``main(config)`` (label a
shard, merging when there is one) and ``merge(config)``. See job.py for the flow, entries.py for
turning the pairwise judge's verdicts into labels, metrics.py for the summary's metrics, store.py for
resumable shard output. The judge itself, its prompts and scoring live in rlaif_jobs.feedback.
"""

from rlaif_jobs.label.job import MergeError, main, merge

__all__ = ["MergeError", "main", "merge"]
