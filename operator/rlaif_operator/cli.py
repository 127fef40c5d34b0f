"""The ``rlaif`` command: validate manifests, run them locally, manage builtin models and CRDs.

  rlaif run FILE          run the manifests' stages on this machine (local mode, no cluster)
  rlaif validate FILE...  check manifests against the API models and the generated CRD schemas
  rlaif models install [NAME...]   build builtin models into the cache
  rlaif crds [--check]    regenerate crds/ from the API models
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rlaif_operator.api import KINDS, ManifestError, parse_resource
from rlaif_operator.api.crdgen import build_crd
from rlaif_operator.api.crdschema import crd_schema, validate
from rlaif_operator.api.manifests import load_documents


def validate_file(path: str) -> list[str]:
    """All problems in one manifest file, checked as the API server would and as the operator would."""
    problems = []
    try:
        documents = load_documents(path)
    except ManifestError as err:
        return [str(err)]
    for source, doc in documents:
        kind = doc.get("kind") if isinstance(doc, dict) else None
        if kind in KINDS:
            schema_errors = validate(crd_schema(build_crd(KINDS[kind])), doc)
            problems += [f"{source}: {e}" for e in schema_errors]
        try:
            parse_resource(doc, source)
        except ManifestError as err:
            problems.append(str(err))
    return problems


def _cmd_validate(args: argparse.Namespace) -> int:
    bad = 0
    for path in args.files:
        problems = validate_file(path)
        if problems:
            bad += 1
            print(f"{path}: INVALID", *problems, sep="\n  ")
        else:
            print(f"{path}: ok")
    return 1 if bad else 0


def _cmd_crds(args: argparse.Namespace) -> int:
    from rlaif_operator.api import crdgen

    return crdgen.main(["--out", args.out] + (["--check"] if args.check else []))


def _cmd_models(args: argparse.Namespace) -> int:
    from rlaif_jobs.models import install

    return install.main(args.names)


def _cmd_run(args: argparse.Namespace) -> int:
    from rlaif_operator.local.runner import run_file

    return run_file(args.file, workdir=Path(args.workdir), only=args.only, force=args.force, nproc=args.nproc,
                    verbose=args.verbose)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rlaif", description="Kubernetes-native RLAIF.")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("run", help="run a manifest's stages locally (no cluster)")
    p.add_argument("file", help="a YAML file of rlaif.dev resources (a pipeline or single stages)")
    p.add_argument("--workdir", default="runs", help="where configs, logs and state go (default: runs)")
    p.add_argument("--only", help="run just this resource (by metadata.name)")
    p.add_argument("--force", action="store_true", help="re-run stages that already succeeded")
    p.add_argument("--nproc", type=int, default=1, help="trainer processes (torchrun ranks) per stage")
    p.add_argument("--verbose", action="store_true", help="also show the stages' logs (engine and library output)")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("validate", help="validate manifests against the API and CRD schemas")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_cmd_validate)

    p = sub.add_parser("models", help="builtin models")
    msub = p.add_subparsers(dest="models_command", required=True)
    pi = msub.add_parser("install", help="build builtin models into the cache")
    pi.add_argument("names", nargs="*")
    pi.set_defaults(func=_cmd_models)

    p = sub.add_parser("crds", help="regenerate the CRDs from the API models")
    p.add_argument("--out", default="crds")
    p.add_argument("--check", action="store_true", help="fail if crds/ is out of date")
    p.set_defaults(func=_cmd_crds)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
