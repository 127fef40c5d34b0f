"""Reward-model training throughput and accuracy: this trainer (DeepSpeed) against TRL's RewardTrainer.

Same model (SmolLM2-135M-Instruct), same pairs, same text (the chat-templated reward_input: TRL gets
the conversations and renders them with the same template), same global batch, micro-batch,
sequence cap, learning rate, schedule, number of optimizer steps and precision, one CPU process each,
run one after the other on this machine. Printed: steady-state training samples/s (pairs per second from the end of the
first optimizer step to the end of the last, so start-up and the first step's allocations count for
neither) and the ratio; and the pairwise accuracy both final models reach on the held-out pairs,
scored the same way (RewardModelScorer, float32) against the human labels.

Ours trains on packed rows by default (training.packing: each pair's shared prompt computed once,
no padding; see rlaif_jobs.reward.packing); --no-packing measures its padded batches. TRL 1.16's
RewardTrainer has no padding-free or packing option (its collator pads chosen and rejected to the
longest text of the micro-batch), so TRL runs as it ships. Gradient checkpointing is off for both
(RewardConfig turns it on by default, our trainer off: the same setting for both, --gradient-checkpointing
turns it on for both). The load average (1 min) is printed before and after each run: compare runs
made at similar load only.

Data: builtin://datasets/checkable-pairs (410 pairs, human labels), split 328/82 as the trainer
splits it. It carries no AI labels, so the soft label is the human one, p = 1 or 0 (pass --labels FILE
to train on a labeling stage's soft labels). TRL's RewardTrainer needs chosen/rejected: the argmax of p.
Both trainers read the same training file; the held-out pairs are scored after training.

One optimizer step of 8 pairs (16 sequences of ~75 tokens) of SmolLM2-135M took ~6-7 s (~13 CPU-s) on
this 2-core CPU when it was otherwise idle, so the default of 8 steps per trainer runs in ~5 minutes
with loading and scoring. On a loaded, shared machine it takes far longer and the wall-clock rates
swing with the load: compare the samples/CPU-s column too, and run both orders (--trl-first).

    .venv/bin/python bench/bench_reward.py                  # defaults
    .venv/bin/python bench/bench_reward.py --steps 30       # one full epoch of the 240 pairs
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="builtin://smollm2-135m-instruct")
    p.add_argument("--dataset", default="builtin://datasets/checkable-pairs",
                   help="pairs with humanPreference (used as p = 1/0 when --labels is not given)")
    p.add_argument("--labels", default=None, help="a labels file with soft labels pA instead")
    p.add_argument("--steps", type=int, default=8, help="optimizer steps for each trainer")
    p.add_argument("--batch", type=int, default=8, help="global batch (pairs per optimizer step)")
    p.add_argument("--micro", type=int, default=4, help="pairs per forward pass")
    p.add_argument("--max-length", type=int, default=128, help="token cap (the shipped pairs are 46-107 tokens)")
    p.add_argument("--lr", type=float, default=3e-5)
    p.add_argument("--warmup-ratio", type=float, default=0.1)
    p.add_argument("--precision", choices=["bf16", "fp32"], default="fp32",
                   help="fp32 by default: this CPU (AVX-512, no AMX) runs fp32 faster than bf16 or autocast")
    p.add_argument("--zero-stage", type=int, default=None, choices=[0, 1, 2, 3],
                   help="our trainer's deepspeed.zeroStage (default unset, as users run it: 0 on one process)")
    p.add_argument("--no-packing", dest="packing", action="store_false",
                   help="our trainer on padded batches (training.packing false) instead of packed rows")
    p.add_argument("--gradient-checkpointing", action="store_true", help="on for both trainers")
    p.add_argument("--eval-fraction", type=float, default=0.2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="OMP threads for each run")
    p.add_argument("--workdir", default=None, help="keep outputs here (default: a temporary folder)")
    p.add_argument("--only", choices=["ours", "trl"], default=None, help="run one side only")
    p.add_argument("--trl-first", action="store_true",
                   help="run TRL first (on a shared machine, run both orders: load drifts over minutes)")
    p.add_argument("--_trl-worker", dest="trl_worker", default=None, help=argparse.SUPPRESS)
    return p.parse_args(argv)


# --- data ---------------------------------------------------------------------------------------------
def prepare_labels(args: argparse.Namespace, work: Path) -> Path:
    """The labels file both trainers read: --labels as given, else the dataset with p from the humans."""
    if args.labels:
        return Path(args.labels)
    from rlaif_jobs.config.common import DatasetRef
    from rlaif_jobs.data import load_records, normalize_preference

    recs = load_records(DatasetRef(uri=args.dataset), ["context", "responseA", "responseB", "humanPreference"])
    out = work / "labels.jsonl"
    with out.open("w") as f:
        for r in recs:
            human = normalize_preference(r["humanPreference"])
            if human is None:
                continue
            f.write(json.dumps({**r, "pA": 1.0 if human == "a" else 0.0, "humanPreference": human}) + "\n")
    return out


def split(args: argparse.Namespace, labels: Path):
    """(train, held-out) as the reward trainer would split them (same function, same seed)."""
    from rlaif_jobs.reward.data import load_preferences, split_holdout

    return split_holdout(load_preferences(str(labels)), args.eval_fraction, args.seed)


def write_train_file(train, path: Path) -> Path:
    """The training pairs alone: both trainers read exactly these (the held-out ones are scored after)."""
    with path.open("w") as f:
        for x in train:
            f.write(json.dumps({"id": x.id, "context": x.context, "responseA": x.response_a,
                                "responseB": x.response_b, "pA": x.p, "humanPreference": x.human}) + "\n")
    return path


def steady_rate(times: list[float], batch: int) -> float:
    """Pairs per second between the end of the first optimizer step and the end of the last (wall
    clock, or with process CPU times: pairs per CPU-second, which other load on a shared machine
    barely moves)."""
    if len(times) < 2 or times[-1] <= times[0]:
        return float("nan")
    return (len(times) - 1) * batch / (times[-1] - times[0])


def child_env(args: argparse.Namespace) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_PORT")}
    env.update(OMP_NUM_THREADS=str(args.threads), PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1",
               TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    return env


# --- this trainer ------------------------------------------------------------------------------------
def run_ours(args: argparse.Namespace, train_file: Path, work: Path) -> dict:
    import yaml

    from rlaif_jobs.train.metrics import read_metrics

    out = work / "ours"
    n_train = sum(1 for line in train_file.read_text().splitlines() if line.strip())
    epochs = (args.steps - 0.5) / (n_train // args.batch)  # the trainer runs ceil(epochs x steps/epoch) steps
    config = {
        "baseModel": {"uri": args.model},
        "preferencesUri": str(train_file),
        "training": {
            "learningRate": args.lr, "epochs": epochs, "batchSize": args.batch,
            "microBatchSize": args.micro, "maxLength": args.max_length, "precision": args.precision,
            "warmupRatio": args.warmup_ratio, "evalFraction": 0.0, "seed": args.seed,
            "packing": args.packing, "gradientCheckpointing": args.gradient_checkpointing,
            "checkpointEverySteps": 100000, "evalEverySteps": 100000, "keepCheckpoints": 1,
            "deepspeed": {} if args.zero_stage is None else {"zeroStage": args.zero_stage},
        },
        "output": {"uri": str(out)},
    }
    cfg = work / "ours.yaml"
    cfg.write_text(yaml.safe_dump(config))
    t0 = time.time()
    proc = subprocess.run([sys.executable, "-m", "rlaif_jobs.reward", "--config", str(cfg), "--log-level", "WARNING"],
                          cwd=REPO, env=child_env(args), capture_output=True, text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"our trainer failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    recs = [r for r in read_metrics(out / "metrics.jsonl") if "trainLoss" in r]
    times, cpu = [r["time"] for r in recs], [r["cpuSeconds"] for r in recs]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["metrics"]["steps"] == args.steps, summary["metrics"]
    return {"steps": len(times), "samplesPerSecond": steady_rate(times, args.batch),
            "samplesPerCpuSecond": steady_rate(cpu, args.batch), "wallSeconds": wall,
            "model": str(out / "model"), "finalTrainLoss": recs[-1]["trainLoss"],
            "zeroStage": summary["deepspeed"]["zeroStage"]}


# --- TRL --------------------------------------------------------------------------------------------
def run_trl(args: argparse.Namespace, train_file: Path, work: Path) -> dict:
    result = work / "trl-result.json"
    t0 = time.time()
    proc = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--_trl-worker", str(work),
                           "--labels", str(train_file)], cwd=REPO, env=child_env(args), capture_output=True,
                          text=True)
    wall = time.time() - t0
    if proc.returncode != 0:
        raise SystemExit(f"TRL run failed ({proc.returncode}):\n{proc.stderr[-4000:]}")
    res = json.loads(result.read_text())
    return {"steps": len(res["stepTimes"]), "samplesPerSecond": steady_rate(res["stepTimes"], args.batch),
            "samplesPerCpuSecond": steady_rate(res["stepCpu"], args.batch), "wallSeconds": wall,
            "model": res["model"], "finalTrainLoss": res["finalTrainLoss"]}


def trl_worker(args: argparse.Namespace, work: Path) -> None:
    """Runs in its own process: TRL RewardTrainer on the same split, same text, same knobs."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, TrainerCallback
    from trl import RewardConfig, RewardTrainer

    from rlaif_jobs.models.resolve import resolve_model_uri
    from rlaif_jobs.reward.data import load_preferences
    from rlaif_jobs.reward.format import has_chat_template

    train = load_preferences(args.labels)  # the training file the parent wrote
    path = resolve_model_uri(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    assert has_chat_template(tok), "the benchmark compares chat-templated text"
    torch.manual_seed(args.seed)
    model = AutoModelForSequenceClassification.from_pretrained(path, num_labels=1, dtype=torch.float32)
    model.config.pad_token_id = tok.pad_token_id

    def conv(ctx: str, resp: str) -> list[dict]:
        return [{"role": "user", "content": ctx}, {"role": "assistant", "content": resp}]

    rows = []
    for x in train:
        if x.p == 0.5:
            continue  # no argmax: RewardTrainer cannot use a tie
        good, bad = (x.response_a, x.response_b) if x.p > 0.5 else (x.response_b, x.response_a)
        rows.append({"chosen": conv(x.context, good), "rejected": conv(x.context, bad)})

    total = args.steps
    times: list[float] = []
    cpu: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_end(self, _args, state, control, **kw):
            times.append(time.time())
            cpu.append(time.process_time())

    cfg = RewardConfig(
        output_dir=str(work / "trl"), per_device_train_batch_size=args.micro,
        gradient_accumulation_steps=args.batch // args.micro, max_steps=total, learning_rate=args.lr,
        lr_scheduler_type="linear", warmup_steps=int(args.warmup_ratio * total), weight_decay=0.0,
        max_grad_norm=1.0, bf16=args.precision == "bf16", use_cpu=True, logging_steps=1,
        gradient_checkpointing=args.gradient_checkpointing,  # RewardConfig's default is True; ours is False
        save_strategy="no", eval_strategy="no", report_to=[], max_length=args.max_length, seed=args.seed,
        dataloader_num_workers=0, dataloader_drop_last=True, disable_tqdm=True,
    )
    trainer = RewardTrainer(model=model, args=cfg, train_dataset=Dataset.from_list(rows), processing_class=tok,
                            callbacks=[StepTimer()])
    trainer.train()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    out = work / "trl-model"
    trainer.save_model(str(out))
    tok.save_pretrained(str(out))
    (work / "trl-result.json").write_text(json.dumps({"stepTimes": times, "stepCpu": cpu, "model": str(out),
                                                       "finalTrainLoss": losses[-1] if losses else None}))


# --- shared evaluation -------------------------------------------------------------------------------
def heldout_accuracy(model_dir: str, held) -> dict:
    """Pairwise accuracy of a model folder on the held-out pairs, against the human label where there
    is one, else the AI label's argmax; scored in float32 by the same scorer for both trainers."""
    from rlaif_jobs.reward.loss import preferred_a
    from rlaif_jobs.reward.scorer import RewardModelScorer

    scorer = RewardModelScorer(model_dir, dtype="float32")
    ctx = [x.context for x in held]
    ra = scorer.score(ctx, [x.response_a for x in held])
    rb = scorer.score(ctx, [x.response_b for x in held])
    refs = [(a > b, preferred_a(x.p, x.human)) for a, b, x in zip(ra, rb, held, strict=True)]
    scored = [(w, r) for w, r in refs if r is not None]
    return {"accuracy": sum(w == r for w, r in scored) / len(scored), "pairs": len(scored)}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.trl_worker:
        trl_worker(args, Path(args.trl_worker))
        return 0
    if args.batch % args.micro:
        raise SystemExit("--batch must be a multiple of --micro")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench-reward-"))
    work.mkdir(parents=True, exist_ok=True)
    labels = prepare_labels(args, work)
    train, held = split(args, labels)
    train_file = write_train_file(train, work / "train.jsonl")
    if args.steps * args.batch > len(train):
        raise SystemExit(f"--steps {args.steps} x --batch {args.batch} is more than the {len(train)} training pairs")
    print(f"model {args.model}; {len(train)} training pairs, {len(held)} held out; {args.steps} steps of "
          f"{args.batch} pairs (micro {args.micro}), max length {args.max_length}, {args.precision}, lr {args.lr}, "
          f"{args.threads} threads; workdir {work}", flush=True)

    results = {}
    order = (("ours", run_ours), ("trl", run_trl))
    for name, run in (order[::-1] if args.trl_first else order):
        if args.only and args.only != name:
            continue
        load_before = os.getloadavg()[0]
        r = run(args, train_file, work)
        r["loadBefore"], r["loadAfter"] = load_before, os.getloadavg()[0]
        r.update(heldout_accuracy(r["model"], held))
        results[name] = r
        print(f"{name:>4}: {r['steps']} steps, {r['samplesPerSecond']:.2f} samples/s (steady state), "
              f"{r['samplesPerCpuSecond']:.2f} samples/CPU-s, wall {r['wallSeconds']:.0f} s, held-out accuracy "
              f"{r['accuracy']:.3f} on {r['pairs']} pairs; load average {r['loadBefore']:.1f} before, "
              f"{r['loadAfter']:.1f} after", flush=True)

    if "ours" in results and "trl" in results:
        o, t = results["ours"], results["trl"]
        ratio = o["samplesPerSecond"] / t["samplesPerSecond"]
        cpu_ratio = o["samplesPerCpuSecond"] / t["samplesPerCpuSecond"]
        print("\n| trainer | samples/s | samples/CPU-s | held-out accuracy | load avg before/after |")
        print("|---|---|---|---|---|")
        for label, r in ((f"rlaif (DeepSpeed ZeRO-{o['zeroStage']}, {args.precision}, "
                          f"{'packed' if args.packing else 'padded'})", o),
                         (f"TRL RewardTrainer ({args.precision}, padded)", t)):
            print(f"| {label} | {r['samplesPerSecond']:.2f} | {r['samplesPerCpuSecond']:.2f} | {r['accuracy']:.3f} "
                  f"| {r['loadBefore']:.1f} / {r['loadAfter']:.1f} |")
        print(f"\nratio (rlaif / TRL): {ratio:.2f}x samples/s (target >= 1.5x); {cpu_ratio:.2f}x per CPU-second;"
              f" held-out accuracy {o['accuracy']:.3f} vs {t['accuracy']:.3f} ({o['pairs']} pairs)")
    (work / "bench-result.json").write_text(json.dumps({"args": vars(args), "results": results}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
