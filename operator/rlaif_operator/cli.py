"""The ``rlaif`` command: validate manifests, run them locally, manage builtin models and CRDs.

  rlaif run FILE          run the manifests' stages on this machine (local mode, no cluster); a pipeline
                          ends with <workdir>/report.html and the table of evaluation figures
  rlaif report RUN_DIR    write RUN_DIR/report.html from a run's stage outputs (or --outputs URI...)
  rlaif validate FILE...  check manifests against the API models and the generated CRD schemas
  rlaif models install [NAME...]   build builtin models into the cache
  rlaif crds [--check]    regenerate crds/ from the API models
  rlaif export dpo LABELS_URI OUT [--min-confidence 0.6]
                          a labels file as DPO pairs (prompt, chosen, rejected, chosenProbability) in JSONL,
                          as TRL and OpenRLHF read them; ties (pA 0.5) are left out

On a cluster, working from a kubeconfig like kubectl (KUBECONFIG, --kubeconfig, --context, -n/--namespace,
default: the context's namespace):

  rlaif submit FILE [--dry-run]   validate, then create or update (server-side apply) each rlaif.dev
                                  resource: kind/name created|configured|unchanged
  rlaif status [NAME]             a table of the namespace's resources (phase, progress, ETA, age), or one
                                  (NAME or kind/NAME) in detail: conditions, stages, progress, outputs, metrics
  rlaif logs NAME [--stage S] [--tail N] [--all-pods]
                                  a stage's rank-0 / shard-0 pod log (a pipeline: its current or named stage);
                                  once the pods are gone, the last lines the operator kept (status.logTail)
  rlaif wait NAME [--for Ready|Succeeded|Failed|Finished] [--timeout 1h]
                                  exit 0 when it holds, 1 when the run ended otherwise, 2 on timeout
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

    code = run_file(args.file, workdir=Path(args.workdir), only=args.only, force=args.force, nproc=args.nproc,
                    verbose=args.verbose)
    names = _pipeline_stage_names(args.file)
    if names:  # a pipeline: the report and the evaluation table, whatever the outcome (a partial run too)
        report_run(Path(args.workdir), names=names)
    return code


def _pipeline_stage_names(path: str) -> list[str]:
    """All stage names of a manifest that has a pipeline ([] if it has none, or it does not parse)."""
    from rlaif_operator.api import load_resources
    from rlaif_operator.api.kinds import RLAIFPipeline
    from rlaif_operator.local.plan import PlanError, expand

    try:
        resources = load_resources(path)
        stages = expand(resources)
    except (ManifestError, PlanError):
        return []
    return [s.metadata.name for s in stages] if any(isinstance(r, RLAIFPipeline) for r in resources) else []


def report_run(workdir: Path | None, names: list[str] | None = None, outputs: list[str] | None = None,
               out: str | None = None) -> int:
    """Writes the HTML report and prints the evaluation table; 0, or 1 when nothing could be reported."""
    from rlaif_jobs import runreport

    run = runreport.from_outputs(outputs) if outputs else runreport.from_workdir(workdir or Path("."), names)
    target = out or str((workdir or Path(".")) / "report.html")
    print("\nEvaluation:\n" + runreport.evaluation_table(run))
    if not run.stages:
        print("report: no finished stage to report on", file=sys.stderr)
        return 1
    try:
        runreport.write_report(run, target)
    except ImportError as err:  # matplotlib missing: say how to get it
        print(f"report: cannot draw plots ({err}); pip install matplotlib", file=sys.stderr)
        return 1
    print(f"report: {target}")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    if not args.run_dir and not args.outputs:
        print("error: give RUN_DIR (an rlaif run workdir) or --outputs URI...", file=sys.stderr)
        return 2
    return report_run(Path(args.run_dir) if args.run_dir else None, outputs=args.outputs, out=args.out)


def _cmd_export_dpo(args: argparse.Namespace) -> int:
    from rlaif_jobs.data import DatasetError
    from rlaif_jobs.dpo_export import check_min_confidence, export_dpo

    try:
        counts = export_dpo(args.labels, args.out, check_min_confidence(args.min_confidence))
    except (DatasetError, ValueError) as err:
        print(f"export dpo: {err}", file=sys.stderr)
        return 3
    print(f"export dpo: {counts['pairs']} of {counts['total']} pairs -> {args.out} ({counts['ties']} ties at"
          f" pA 0.5 and {counts['belowConfidence']} below --min-confidence {args.min_confidence} left out)")
    return 0


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

    p = sub.add_parser("report", help="write an HTML report of a run (plots, evaluation, samples, the paper)")
    p.add_argument("run_dir", nargs="?", help="an `rlaif run` workdir (its stage folders name their outputs)")
    p.add_argument("--outputs", nargs="+", help="stage output URIs instead (a cluster run: s3://..., a PVC path)")
    p.add_argument("--out", help="where to write the page (default: RUN_DIR/report.html)")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("validate", help="validate manifests against the API and CRD schemas")
    p.add_argument("files", nargs="+")
    p.set_defaults(func=_cmd_validate)

    from rlaif_operator.clusterctl.commands import add_parsers as add_cluster_parsers

    add_cluster_parsers(sub, validate=validate_file)

    p = sub.add_parser("models", help="builtin models")
    msub = p.add_subparsers(dest="models_command", required=True)
    pi = msub.add_parser("install", help="build builtin models into the cache")
    pi.add_argument("names", nargs="*")
    pi.set_defaults(func=_cmd_models)

    p = sub.add_parser("export", help="export a stage's output for other tools")
    esub = p.add_subparsers(dest="export_command", required=True)
    pe = esub.add_parser("dpo", help="a labels file as DPO pairs (prompt, chosen, rejected, chosenProbability)")
    pe.add_argument("labels", metavar="LABELS_URI", help="a labeling stage's labels file (JSONL or Parquet)")
    pe.add_argument("out", metavar="OUT", help="the JSONL file to write (written atomically)")
    pe.add_argument("--min-confidence", type=float, default=0.5,
                    help="keep pairs whose chosen response's probability max(pA, 1 - pA) is at least this"
                         " (default 0.5: every pair with a preference; ties at pA 0.5 are always left out)")
    pe.set_defaults(func=_cmd_export_dpo)

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
