"""Benchmark: this policy trainer against TRL's RLOOTrainer, same model, prompts, batch and lengths, on CPU.

Both sides run RLOO (k responses per prompt, leave-one-out baseline, KL penalty beta against the frozen
SFT reference) on SmolLM2-135M-Instruct with the same prompts (the checkable prompts, chat template),
the same global batch of completions per optimizer step, the same generation length and temperature,
the same reward function (a programmatic one, so both measure the trainer and not a reward model),
fp32, one process each. Ours rolls out with vLLM (weights pushed after every update); TRL with
transformers ``generate`` (its vLLM modes need CUDA).

Each side runs in its own process. The first ``--warmup`` steps are left out of the rates (they pay
for lazy initialisation); start-up (model loads, vLLM engine, DeepSpeed) is reported separately.
Printed: samples/s (completions per second of training steps) for both and the ratio, for each side
the time per step spent in rollout, reward and update (ours also: the reference's log-probs and, where
the update cannot supply them, the policy's ("prepare"), and the weight push into vLLM ("sync")), and
the load average (os.getloadavg) before and after each side, which says whether the machine was quiet.
Both use torch's fused AdamW (TRL through HF Trainer's default optimizer) and clip gradients at 1.0.

    python bench/bench_policy.py                      # defaults: ~6-10 min on 2 cores, plus the settling
    python bench/bench_policy.py --steps 4 --only ours
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench"))

from quiet import add_settle_option, settle_and_announce  # noqa: E402

TARGET_WORD = "paris"


def reward_fn(prompts: list, completions: list, **_: object) -> list[float]:
    """The shared reward: 1 if the completion mentions the target word, plus a small length term.

    Accepts TRL's conversational completions ([{"role": "assistant", "content": ...}]) and plain text.
    """
    out = []
    for c in completions:
        text = c[-1]["content"] if isinstance(c, list) else str(c)
        out.append(float(TARGET_WORD in text.lower()) - 0.01 * abs(len(text.split()) - 20))
    return out


def load_prompts(n: int) -> list[str]:
    from rlaif_jobs.config.common import DatasetRef
    from rlaif_jobs.data import load_records

    return [r["prompt"] for r in load_records(DatasetRef(uri="builtin://datasets/checkable-prompts"),
                                              required=["prompt"])][:n]


# ------------------------------------------------------------------------------------------- ours
def run_ours(args: argparse.Namespace, out: Path) -> dict:
    from rlaif_jobs.config.policy import PolicyConfig
    from rlaif_jobs.policy.rewards import ProgrammaticReward
    from rlaif_jobs.policy.trainer import train_policy

    prompts_file = out / "prompts.jsonl"
    prompts_file.write_text("".join(json.dumps({"id": str(i), "prompt": p}) + "\n"
                                    for i, p in enumerate(load_prompts(args.num_prompts))))
    cfg = PolicyConfig.model_validate({
        "policy": {"uri": args.model},
        "prompts": {"uri": str(prompts_file)},
        "rewardModelUri": "unused-programmatic-reward",
        "rl": {"algorithm": "rloo", "batchSize": args.batch, "microBatchSize": args.micro_batch,
               "samplesPerPrompt": args.k, "maxNewTokens": args.max_new_tokens, "temperature": args.temperature,
               "maxSteps": args.steps, "learningRate": 1e-5, "klCoef": args.beta, "precision": "fp32",
               "maxLength": 512, "warmupRatio": 0.0, "checkpointEverySteps": 10**6,
               "deepspeed": {} if args.zero_stage is None else {"zeroStage": args.zero_stage}},
        "rollout": {"engine": args.rollout},
        "evaluation": {"enabled": False},
        "output": {"uri": str(out / "run")},
    })
    t0 = time.time()
    reward = ProgrammaticReward(lambda p, r: reward_fn([p], [r])[0], name="bench")
    summary = train_policy(cfg, reward=reward)
    wall = time.time() - t0
    rows = [json.loads(x) for x in (out / "run/metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "meanReward" in r][args.warmup:]
    parts = {k: sum(r.get(f"{k}Seconds", 0.0) for r in rows) / len(rows)
             for k in ("rollout", "reward", "prepare", "update", "sync")}
    step = sum(parts.values())
    return {"side": "ours", "rolloutEngine": summary["rolloutEngine"], "measuredSteps": len(rows),
            "samplesPerSecond": args.batch / step, "stepSeconds": step,
            "perStep": parts, "startupSeconds": wall - sum(r["rolloutSeconds"] + r["rewardSeconds"]
                                                          + r["prepareSeconds"] + r["updateSeconds"]
                                                          + r.get("syncSeconds", 0.0) for r in rows),
            "wallSeconds": wall}


# -------------------------------------------------------------------------------------------- TRL
def run_trl(args: argparse.Namespace, out: Path) -> dict:
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from trl import RLOOConfig, RLOOTrainer

    from rlaif_jobs.models.resolve import resolve_model_uri

    t0 = time.time()
    path = resolve_model_uri(args.model)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32)
    timers = {"rollout": 0.0, "reward": 0.0}
    marks: list[dict] = []

    generate = model.generate

    def timed_generate(*a, **kw):  # TRL samples through the model's own generate()
        t = time.perf_counter()
        try:
            return generate(*a, **kw)
        finally:
            timers["rollout"] += time.perf_counter() - t

    model.generate = timed_generate

    def timed_reward(prompts, completions, **kw):
        t = time.perf_counter()
        try:
            return reward_fn(prompts, completions, **kw)
        finally:
            timers["reward"] += time.perf_counter() - t

    timed_reward.__name__ = "bench_reward"

    class Clock(TrainerCallback):
        def on_step_begin(self, a, state, control, **kw):
            marks.append({"t": time.perf_counter(), **timers})

        def on_step_end(self, a, state, control, **kw):
            marks[-1]["dt"] = time.perf_counter() - marks[-1]["t"]
            for k in timers:
                marks[-1][k] = timers[k] - marks[-1][k]

    data = Dataset.from_list([{"prompt": [{"role": "user", "content": p}]} for p in load_prompts(args.num_prompts)])
    config = RLOOConfig(
        output_dir=str(out / "trl"), per_device_train_batch_size=args.batch, gradient_accumulation_steps=1,
        num_generations=args.k, max_completion_length=args.max_new_tokens, temperature=args.temperature,
        top_k=0, beta=args.beta, learning_rate=1e-5, max_steps=args.steps, logging_steps=1, save_strategy="no",
        report_to=[], use_cpu=True, bf16=False, fp16=False, seed=0, dataloader_num_workers=0,
        disable_tqdm=True)
    trainer = RLOOTrainer(model=model, reward_funcs=timed_reward, args=config, train_dataset=data,
                          processing_class=tok, callbacks=[Clock()])
    trainer.train()
    wall = time.time() - t0
    rows = [m for m in marks if "dt" in m][args.warmup:]
    step = sum(m["dt"] for m in rows) / len(rows)
    rollout = sum(m["rollout"] for m in rows) / len(rows)
    reward = sum(m["reward"] for m in rows) / len(rows)
    return {"side": "trl", "rolloutEngine": "transformers", "measuredSteps": len(rows),
            "samplesPerSecond": args.batch / step, "stepSeconds": step,
            "perStep": {"rollout": rollout, "reward": reward, "update": step - rollout - reward},
            "startupSeconds": wall - sum(m["dt"] for m in marks if "dt" in m), "wallSeconds": wall}


# ------------------------------------------------------------------------------------------ driver
def fmt_load(load: tuple[float, float, float] | list[float]) -> str:
    return "/".join(f"{x:.2f}" for x in load)


def child(args: argparse.Namespace) -> None:
    out = Path(args.workdir) / args.child
    out.mkdir(parents=True, exist_ok=True)
    result = (run_ours if args.child == "ours" else run_trl)(args, out)
    (out / "result.json").write_text(json.dumps(result, indent=2))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="builtin://smollm2-135m-instruct")
    p.add_argument("--batch", type=int, default=16, help="completions per optimizer step")
    p.add_argument("--micro-batch", type=int, default=16, help="ours: completions per forward pass")
    p.add_argument("--k", type=int, default=4, help="completions per prompt")
    p.add_argument("--max-new-tokens", type=int, default=32)
    p.add_argument("--temperature", type=float, default=0.9)
    p.add_argument("--beta", type=float, default=0.05)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--warmup", type=int, default=1, help="first steps left out of the rates")
    p.add_argument("--num-prompts", type=int, default=64)
    # Unset, as users run it: on one process that is stage 0 (nothing to partition; stage 2's buckets cost
    # ~3 GB more RAM on CPU: 10.6 GB peak against 7.8 GB in our trial); TRL runs plain AdamW too.
    p.add_argument("--zero-stage", type=int, default=None, help="ours: deepspeed.zeroStage (default unset: 0)")
    p.add_argument("--rollout", default="vllm", choices=["vllm", "transformers"], help="ours: rollout engine")
    p.add_argument("--only", choices=["ours", "trl"])
    add_settle_option(p, default=180)  # before each side
    p.add_argument("--workdir", default="/tmp/rlaif-bench-policy")
    p.add_argument("--child", choices=["ours", "trl"], help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        child(args)
        return 0
    sides = [args.only] if args.only else ["ours", "trl"]
    results = {}
    # 1 GiB of vLLM KV cache holds far more than a 16 x (prompt + 32)-token batch; the default 2 GiB
    # only adds to the peak memory of a machine shared with TRL's run and others.
    env = {"VLLM_CPU_KVCACHE_SPACE": "1", **os.environ, "PYTHONUNBUFFERED": "1", "TOKENIZERS_PARALLELISM": "false"}
    for side in sides:
        out = Path(args.workdir) / side
        # a fresh folder: the trainer resumes from checkpoints it finds, and a finished run's would
        # make it skip every step and report the old run's metrics
        shutil.rmtree(out, ignore_errors=True)
        cmd = [sys.executable, __file__, *sys.argv[1:], "--child", side]
        settle_and_announce(args.settle, side)
        load_before = os.getloadavg()
        print(f"== {side}: running {args.steps} steps (load average before: {fmt_load(load_before)}) ...", flush=True)
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        with (Path(args.workdir) / f"{side}.log").open("w") as log:
            proc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        if proc.returncode != 0:
            print(f"{side} failed (exit {proc.returncode}); see {args.workdir}/{side}.log")
            return 1
        results[side] = json.loads((out / "result.json").read_text())
        results[side]["loadAverage"] = {"before": load_before, "after": os.getloadavg()}
    print(f"\nmodel {args.model}, fp32, CPU; {args.batch} completions/step ({args.batch // args.k} prompts x {args.k}),"
          f" {args.max_new_tokens} new tokens, temperature {args.temperature}, beta {args.beta};"
          f" {args.steps} steps, first {args.warmup} left out")
    for side, r in results.items():
        parts = ", ".join(f"{k} {v:.2f}s" for k, v in r["perStep"].items())
        print(f"{side:5s} ({r['rolloutEngine']:12s}) {r['samplesPerSecond']:6.2f} samples/s | per step"
              f" {r['stepSeconds']:.2f}s: {parts} | start-up {r['startupSeconds']:.0f}s | load average"
              f" before {fmt_load(r['loadAverage']['before'])}, after {fmt_load(r['loadAverage']['after'])}")
    print(f"(load average: 1/5/15-minute run-queue lengths on {os.cpu_count()} CPUs; above ~0.5 per CPU before a"
          " side starts, another job shares the machine and the ratio is not a quiet-machine figure)")
    if len(results) == 2:
        ratio = results["ours"]["samplesPerSecond"] / results["trl"]["samplesPerSecond"]
        print(f"ratio ours/trl: {ratio:.2f}x (target >= 4x on a quiet machine, issue 22)")
        (Path(args.workdir) / "bench.json").write_text(json.dumps({"results": results, "ratio": ratio}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
