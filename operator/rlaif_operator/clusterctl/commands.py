"""The cluster verbs' argparse wiring and entry points (``cli.py`` adds them to ``rlaif``)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from rlaif_operator.clusterctl.resources import ClusterctlError
from rlaif_operator.kube import KubeError


def _cluster_options() -> argparse.ArgumentParser:
    parent = argparse.ArgumentParser(add_help=False)
    group = parent.add_argument_group("cluster (as kubectl)")
    group.add_argument("--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, else ~/.kube/config)")
    group.add_argument("--context", help="kubeconfig context (default: the current context)")
    group.add_argument("-n", "--namespace", help="namespace (default: the context's, else default)")
    return parent


def _run(verb: Callable[[Any, argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Connects, runs ``verb``, and turns the errors a user should read into one line and exit 1."""

    def run(args: argparse.Namespace) -> int:
        from rlaif_operator.clusterctl.connect import connect

        try:
            target = connect(args.kubeconfig, args.context, args.namespace)
            return verb(target, args)
        except ClusterctlError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        except KubeError as err:
            detail = err.body.get("message") or err.reason
            hint = " (is the cluster reachable? check --kubeconfig / --context)" if err.status == 0 else ""
            print(f"error: the API server answered {err.status}: {detail}{hint}", file=sys.stderr)
            return 1

    return run


def _submit(target: Any, args: argparse.Namespace) -> int:
    from rlaif_operator.clusterctl.submit import submit

    return submit(target, args.file, args.validate, dry_run=args.dry_run)


def _status(target: Any, args: argparse.Namespace) -> int:
    from rlaif_operator.clusterctl import render
    from rlaif_operator.clusterctl.resources import find, list_all

    now = render.now_utc()
    if args.name:
        print(render.describe(find(target.kube, target.namespace, args.name), now))
        return 0
    resources = list_all(target.kube, target.namespace)
    if not resources:
        print(f"no rlaif.dev resources in namespace {target.namespace}", file=sys.stderr)
        return 0
    print(render.table(resources, now))
    return 0


def _logs(target: Any, args: argparse.Namespace) -> int:
    from rlaif_operator.clusterctl.logs import logs

    return logs(target, args.name, stage=args.stage, tail=args.tail, all_pods=args.all_pods)


def _wait(target: Any, args: argparse.Namespace) -> int:
    from rlaif_operator.clusterctl.wait import parse_duration, wait

    return wait(target, args.name, args.condition, parse_duration(args.timeout))


def add_parsers(sub: Any, validate: Callable[[str], list[str]]) -> None:
    """Adds submit, status, logs and wait to the ``rlaif`` subparsers; ``validate`` is ``rlaif validate``'s
    check of one file (its problems), which submit runs first."""
    cluster = _cluster_options()

    p = sub.add_parser("submit", parents=[cluster], help="validate, then create or update the manifests' resources"
                       " on the cluster (server-side apply)")
    p.add_argument("file", help="a YAML file of rlaif.dev resources")
    p.add_argument("--dry-run", action="store_true", help="validate and ask the API server, change nothing")
    p.set_defaults(func=_run(_submit), validate=validate)

    p = sub.add_parser("status", parents=[cluster], help="the rlaif.dev resources of a namespace, or one in detail")
    p.add_argument("name", nargs="?", help="NAME or kind/NAME (a pipeline or a stage); none: a table of all")
    p.set_defaults(func=_run(_status))

    p = sub.add_parser("logs", parents=[cluster], help="a stage's pod logs (rank 0 / shard 0), or its kept last lines")
    p.add_argument("name", help="NAME or kind/NAME of a stage or a pipeline")
    p.add_argument("--stage", help="a pipeline's stage (label, reward, policy or the child's name; default: the"
                   " current one)")
    p.add_argument("--tail", type=int, help="only the last N lines")
    p.add_argument("--all-pods", action="store_true", help="every pod of the stage (each rank / shard), one after"
                   " another")
    p.set_defaults(func=_run(_logs))

    p = sub.add_parser("wait", parents=[cluster], help="wait until a resource is Ready / Succeeded / Failed /"
                       " Finished (exit 0; 1: it ended otherwise; 2: timeout)")
    p.add_argument("name", help="NAME or kind/NAME")
    p.add_argument("--for", dest="condition", default="Ready", choices=["Ready", "Succeeded", "Failed", "Finished"],
                   help="default: Ready (kstatus: True once Succeeded)")
    p.add_argument("--timeout", default="1h", help="how long at most, e.g. 90s, 30m, 24h (default: 1h)")
    p.set_defaults(func=_run(_wait))
