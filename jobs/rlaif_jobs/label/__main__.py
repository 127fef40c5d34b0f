"""``python -m rlaif_jobs.label --config FILE [--shard-index I] [--num-shards N] [--merge]``.

Labels this process's shard (and merges when there is one shard); ``--merge`` only merges finished
shards. Exit codes (``rlaif_jobs.errors``): 0 done, 3 bad input (config, dataset, a labeler that cannot
load: retrying will not help), 1 anything else (retry: the shard resumes where it stopped).
"""

from __future__ import annotations

import argparse
import sys

from rlaif_jobs.config.label import LabelConfig
from rlaif_jobs.entry import base_parser, run_main
from rlaif_jobs.label.job import main, merge


def parser() -> argparse.ArgumentParser:
    p = base_parser("AI preference labeling (RLAIF stage 1): soft labels from an LLM judge.")
    p.add_argument("--shard-index", type=int, default=None,
                   help="this process's shard (default: shardIndex, else $JOB_COMPLETION_INDEX, else 0)")
    p.add_argument("--num-shards", type=int, default=None, help="override numShards")
    p.add_argument("--merge", action="store_true", help="only merge finished shards into labels + summary")
    return p


def run(config: LabelConfig, args: argparse.Namespace) -> object:
    """Labels this shard (or only merges, with --merge); returns the summary or the shard's figures."""
    if args.num_shards is not None:
        config = LabelConfig.model_validate({**config.model_dump(), "num_shards": args.num_shards})
    return merge(config) if args.merge else main(config, shard_index=args.shard_index)


def cli(argv: list[str] | None = None) -> int:
    """Parses ``argv``, runs the stage, and returns the exit code (3 for bad input, 1 for an endpoint down)."""
    args = parser().parse_args(argv)
    return run_main(lambda config: run(config, args), LabelConfig, args)


if __name__ == "__main__":
    sys.exit(cli())
