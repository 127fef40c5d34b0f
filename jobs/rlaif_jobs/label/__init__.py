"""Stage 1, the PreferenceLabelJob workload: an LLM labels which of two responses is better.

``python -m rlaif_jobs.label --config FILE``; the library entry points are ``main(config)`` (label a
shard, merging when there is one) and ``merge(config)``. See job.py for the flow, prompts.py for the
paper's prompt, scoring.py for soft labels and metrics, store.py for resumable shard output.
"""

from rlaif_jobs.label.job import MergeError, main, merge

__all__ = ["MergeError", "main", "merge"]
