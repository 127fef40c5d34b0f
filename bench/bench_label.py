"""Benchmark of AI preference labeling (issue 3): throughput against transformers, and alignment.

Part 1, throughput. The same pairs, both orders, SmolLM2-135M-Instruct on CPU, float32, Base prompt:
  (a) this labeler on the in-process vLLM engine (prefix caching on), and again with it off;
  (b) a straightforward transformers loop: one pair in one order per forward pass (batch size 1);
  (c) batched transformers (one left-padded forward pass per batch of prompts);
  (d) this labeler on the transformers engine with its shared-prefix scoring (engines/prefix_tree.py:
      every token shared between prompts computed once, no padding).
Pairs/s exclude model loading (reported apart); ratios are computed from numbers measured in this run.
The prefix-caching effect is also shown with the Detailed preamble, whose ~500-token rater
instructions are the shared prefix.

The roofline, measured in the same run: the best matmul GFLOP/s of this CPU at the labeler's own
GEMM shapes (several row counts), turned into prefill tokens/s for the model. Against it: the tokens/s
each arm computed, and the ceiling of any exact labeler here: (d) computes each distinct token of the
prompts once (the fewest an exact prefill can compute), so no engine can beat roofline / (d)'s tokens
per pair in pairs/s. The ceiling's ratio to (b) says whether 5x (b) is possible at all on this CPU.

Part 2, the paper's alignment table at our scale: alignment with the shipped checkable dataset's
correct answers (builtin://datasets/checkable-pairs), per task, for Base, Detailed and Detailed+CoT,
with the position-bias rate (% same position preferred in both orders), for SmolLM2-135M-Instruct
and Qwen2.5-Coder-1.5B-Instruct, on the vLLM engine in float32.

  python bench/bench_label.py                       # default size: ~10-15 min on 2 idle cores
  python bench/bench_label.py --align-pairs 300 --qwen-align-pairs 300 --cot-pairs 300 \
      --qwen-cot-pairs 300 --cot-tokens 512                                       # the full dataset
  python bench/bench_label.py --skip-qwen --throughput-pairs 64 --json out.json
  python bench/bench_label.py --skip-alignment --arms b,d   # throughput of (b) and (d) + the roofline only

The machine may be shared: the load average is printed at the start and the end, and the roofline is
measured again after the arms; shares of it are taken against the higher of the two (conservative).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from quiet import add_settle_option, settle_and_announce  # noqa: E402

from rlaif_jobs.config.label import LabelConfig  # noqa: E402
from rlaif_jobs.datasets.generate import checkable_pairs  # noqa: E402
from rlaif_jobs.feedback import open_engine  # noqa: E402
from rlaif_jobs.label import main as label  # noqa: E402
from rlaif_jobs.label import metrics  # noqa: E402

SMOLLM2 = "builtin://smollm2-135m-instruct"
QWEN = "builtin://qwen2.5-coder-1.5b-instruct"
TASKS = ("summarization", "helpful", "harmless")


def _config(model: str, engine: str, data: str, out: str, *, dtype: str = "float32", batch: int = 64,
            caching: bool = True, prompt: dict | None = None) -> LabelConfig:
    return LabelConfig.model_validate({
        "labeler": {"model": {"uri": model, "dtype": dtype}, "engine": engine, "batchSize": batch,
                    "maxModelLen": 4096, "enablePrefixCaching": caching},
        "dataset": {"uri": data}, "output": {"uri": out}, "prompt": prompt or {}})


def _dataset(rows: list[dict], folder: Path, name: str) -> str:
    path = folder / f"{name}.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def _run(cfg: LabelConfig, engine) -> tuple[dict, list[dict]]:
    summary = label(cfg, engine=engine)
    labels_path = Path(summary["outputs"]["labels"])
    labels = [json.loads(x) for x in labels_path.read_text().splitlines() if x.strip()]
    return summary["metrics"], labels


def _load(spec_cfg: LabelConfig):
    t0 = time.perf_counter()
    engine = open_engine(spec_cfg.labeler)
    return engine, time.perf_counter() - t0


# ---------------------------------------------------------------- roofline
def _model_shape(model: str) -> dict:
    from rlaif_jobs.models.resolve import resolve_model_uri

    cfg = json.loads((Path(resolve_model_uri(model)) / "config.json").read_text())
    d, heads, layers = cfg["hidden_size"], cfg["num_attention_heads"], cfg["num_hidden_layers"]
    kv, hd = cfg.get("num_key_value_heads") or heads, cfg.get("head_dim") or d // heads
    inter = cfg["intermediate_size"]
    per_layer = d * heads * hd * 2 + d * kv * hd * 2 + 3 * d * inter  # q, o, k, v, gated MLP
    return {"hidden": d, "intermediate": inter, "layers": layers, "headDim": hd, "heads": heads,
            "matmulParams": layers * per_layer}


def _gemm_gflops(m: int, k: int, n: int, dtype, seconds: float) -> float:
    import torch

    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b  # warm-up (thread pool, caches)
    count, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        count += 1
    return count * 2 * m * k * n / (time.perf_counter() - t0) / 1e9


def roofline(model: str, dtype: str, prompt_tokens: int = 150, seconds: float = 1.0) -> dict:
    """The prefill tokens/s this CPU could reach for ``model``: the best matmul GFLOP/s measured now in
    ``dtype`` over the model's GEMM shapes (tokens x hidden @ hidden x intermediate, and the down
    projection back) at 128-1024 token rows, all threads, divided by the FLOPs of one prompt token
    (2 per matmul parameter, plus attention over ``prompt_tokens``/2 on average; the vocabulary
    projection is computed for the read positions only, so it is left out)."""
    import torch

    shape = _model_shape(model)
    dt = getattr(torch, dtype)
    h, i = shape["hidden"], shape["intermediate"]
    measured = {f"{m}x{k}x{n}": _gemm_gflops(m, k, n, dt, seconds)
                for m in (128, 256, 512, 1024) for k, n in ((h, i), (i, h))}
    gflops = max(measured.values())
    attention = 2 * 2 * shape["layers"] * shape["heads"] * shape["headDim"] * prompt_tokens / 2
    per_token = 2 * shape["matmulParams"] + attention
    return {"model": model, "dtype": dtype, "matmulGflops": gflops, "gemms": measured, "flopsPerToken": per_token,
            "rooflineTokensPerSecond": gflops * 1e9 / per_token, "threads": torch.get_num_threads()}


# ---------------------------------------------------------------- part 1: throughput
def throughput(args, work: Path) -> dict:
    rows = checkable_pairs()[: args.throughput_pairs]
    warm = checkable_pairs()[-4:]
    data, warm_data = _dataset(rows, work, "tp"), _dataset(warm, work, "warm")
    results: dict[str, dict] = {"roofline": roofline(SMOLLM2, "float32")}  # first: no engine's threads around
    results["roofline"]["loadAverage"] = os.getloadavg()
    arms = [
        ("a", "vLLM engine, prefix caching on", "vllm", dict(caching=True)),
        ("a-nocache", "vLLM engine, prefix caching off", "vllm", dict(caching=False)),
        ("b", "transformers loop (1 pair x 1 order per pass)", "transformers", dict(batch=1, caching=False)),
        ("c", f"transformers batched ({args.hf_batch} prompts per pass)", "transformers",
         dict(batch=args.hf_batch, caching=False)),
        ("d", "transformers engine, shared-prefix scoring", "transformers", dict(caching=True)),
    ]
    chosen = {a.strip() for a in args.arms.split(",")}
    for key, title, engine_kind, opts in [arm for arm in arms if arm[0] in chosen]:
        base = _config(SMOLLM2, engine_kind, data, str(work / f"tp-{key}"), **opts)
        engine, load_s = _load(base)
        try:
            _run(_config(SMOLLM2, engine_kind, warm_data, str(work / f"warm-{key}"), **opts), engine)
            n0 = (getattr(engine, "cached_tokens", 0), getattr(engine, "prompt_tokens", 0),
                  getattr(engine, "computed_tokens", 0))
            metrics, _ = _run(base, engine)
            entry = {"title": title, "pairsPerSecond": metrics["pairsPerSecond"],
                     "elapsedSeconds": metrics["elapsedSeconds"], "loadSeconds": load_s,
                     "inputTokens": metrics["inputTokens"], "pairs": len(rows)}
            if engine_kind == "transformers":
                computed = engine.computed_tokens - n0[2]
                entry["computedTokensPerPair"] = computed / len(rows)
                entry["promptTokensPerPair"] = (engine.prompt_tokens - n0[1]) / len(rows)
                entry["computedPrefillTokensPerSecond"] = computed / metrics["elapsedSeconds"]
                if key == "d":
                    m2, _ = _run(_config(SMOLLM2, engine_kind, data, str(work / f"tp-{key}-detailed"), **opts,
                                         prompt={"preamble": "detailed"}), engine)
                    entry["detailedPairsPerSecond"] = m2["pairsPerSecond"]
            if engine_kind == "vllm":
                cached, sent = engine.cached_tokens - n0[0], engine.prompt_tokens - n0[1]
                entry["prefixCacheHitRate"] = cached / sent if sent else 0.0
                # prompt tokens actually computed (not served from the cache) per second of labeling
                entry["computedPrefillTokensPerSecond"] = (sent - cached) / metrics["elapsedSeconds"]
                detailed = _config(SMOLLM2, engine_kind, data, str(work / f"tp-{key}-detailed"), **opts,
                                   prompt={"preamble": "detailed"})
                n1 = (engine.cached_tokens, engine.prompt_tokens)
                m2, _ = _run(detailed, engine)
                entry["detailedPairsPerSecond"] = m2["pairsPerSecond"]
                sent = engine.prompt_tokens - n1[1]
                entry["detailedPrefixCacheHitRate"] = (engine.cached_tokens - n1[0]) / sent if sent else 0.0
        finally:
            engine.close()
        results[key] = entry
        entry["loadAverage"] = os.getloadavg()
        print(f"  ({key}) {title}: {entry['pairsPerSecond']:.2f} pairs/s "
              f"(labeling {entry['elapsedSeconds']:.1f}s, load {load_s:.1f}s; load average "
              f"{entry['loadAverage'][0]:.1f})", flush=True)
    # again after the arms: on a shared machine the CPU's speed moves; the higher figure is the roofline
    after = roofline(SMOLLM2, "float32")
    r = results["roofline"]
    r["startTokensPerSecond"], r["endTokensPerSecond"] = r["rooflineTokensPerSecond"], after["rooflineTokensPerSecond"]
    if after["matmulGflops"] > r["matmulGflops"]:
        r.update(matmulGflops=after["matmulGflops"], rooflineTokensPerSecond=after["rooflineTokensPerSecond"])
    return results


# ---------------------------------------------------------------- part 2: alignment
VARIANTS = [
    ("Base", {"preamble": "base"}),
    ("Detailed", {"preamble": "detailed"}),
    ("Detailed + CoT", {"preamble": "detailed", "chainOfThought": {"enabled": True}}),
]


def _per_task(labels: list[dict]) -> dict[str, float | None]:
    out = {}
    for task in TASKS:
        out[task] = metrics.alignment([r for r in labels if r.get("task") == task])[0]
    return out


def alignment(args, work: Path, model: str, dtype: str) -> list[dict]:
    big = model == QWEN  # 11x the compute of SmolLM2 per token: a smaller default sample
    rows = checkable_pairs()[: args.qwen_align_pairs if big else args.align_pairs]
    cot_rows = checkable_pairs()[: args.qwen_cot_pairs if big else args.cot_pairs]
    data, cot_data = _dataset(rows, work, "align"), _dataset(cot_rows, work, "align-cot")
    name = model.removeprefix("builtin://")
    engine, load_s = _load(_config(model, "vllm", data, str(work / "x"), dtype=dtype))
    print(f"  {name} ({dtype}) loaded in {load_s:.0f}s", flush=True)
    table = []
    try:
        for title, prompt in VARIANTS:
            cot = "chainOfThought" in prompt
            if cot:
                prompt = {**prompt, "chainOfThought": {"enabled": True, "maxTokens": args.cot_tokens}}
            out = work / f"align-{name}-{dtype}-{title.replace(' ', '').replace('+', '-')}"
            cfg = _config(model, "vllm", cot_data if cot else data, str(out), dtype=dtype, prompt=prompt)
            metrics, labels = _run(cfg, engine)
            row = {"model": name, "dtype": dtype, "prompt": title, "pairs": len(labels),
                   "abstained": int(metrics.get("abstained", 0)), "alignment": metrics.get("alignment"),
                   "samePositionRate": metrics.get("samePositionRate"), "perTask": _per_task(labels),
                   "pairsPerSecond": metrics["pairsPerSecond"],
                   "inputTokensPerPair": metrics["inputTokens"] / max(1, len(labels)),
                   "outputTokensPerPair": metrics["outputTokens"] / max(1, len(labels))}
            table.append(row)
            print(f"  {name:28s} {title:15s} n={row['pairs']:3d} alignment {row['alignment']:.3f} "
                  f"same-position {row['samePositionRate']:.0%}", flush=True)
    finally:
        engine.close()
    return table


def _print_report(tp: dict | None, table: list[dict]) -> None:
    if tp:
        arms = [k for k in tp if k != "roofline"]
        base = tp["b"]["pairsPerSecond"] if "b" in tp else None
        print("\n== Throughput: SmolLM2-135M-Instruct, float32, both orders, Base prompt ==")
        print(f"{'arm':10s} {'pairs/s':>8s} {'vs (b)':>8s} {'vs (c)':>8s}  engine")
        for key in arms:
            rate = tp[key]["pairsPerSecond"]
            vs = [f"{rate / tp[k]['pairsPerSecond']:7.1f}x" if k in tp else "      -" for k in ("b", "c")]
            print(f"{key:10s} {rate:8.2f} {vs[0]} {vs[1]}  {tp[key]['title']}")
        r = tp["roofline"]
        peak = r["rooflineTokensPerSecond"]
        print(f"roofline: best matmul {r['matmulGflops']:.1f} GFLOP/s ({r['dtype']}, {r['threads']} threads,"
              f" the model's GEMM shapes) = {peak:.0f} prefill tokens/s for this model (start "
              f"{r.get('startTokensPerSecond', peak):.0f}, end {r.get('endTokensPerSecond', peak):.0f}: the higher)")
        rates = {k: tp[k]["computedPrefillTokensPerSecond"] for k in arms}
        print("computed prefill tokens/s as a share of it: "
              + ", ".join(f"({k}) {v:.0f} = {v / peak:.0%}" for k, v in rates.items()))
        if "d" in tp:
            d = tp["d"]
            print(f"(d) shared-prefix scoring: {d['pairsPerSecond']:.2f} pairs/s at "
                  f"{rates['d'] / peak:.0%} of the same-run roofline (target >= 70%)")
            distinct = d["computedTokensPerPair"]
            ceiling = peak / distinct
            if base is not None:
                print(f"tokens per pair (both orders): {tp['b']['promptTokensPerPair']:.0f} sent, {distinct:.0f}"
                      f" distinct ((d) computes each once: the fewest any exact prefill computes)")
                print(f"ceiling of any exact labeler on this CPU: {peak:.0f} / {distinct:.0f} = {ceiling:.2f}"
                      f" pairs/s = {ceiling / base:.1f}x (b)")
                best = max((k for k in ("a", "d") if k in tp), key=lambda k: tp[k]["pairsPerSecond"])
                need = 5 * base * distinct
                print(f"target >= 5x (b): best ({best}) {tp[best]['pairsPerSecond'] / base:.1f}x"
                      f" -> {'met' if tp[best]['pairsPerSecond'] >= 5 * base else 'NOT met'}; ({best}) reaches"
                      f" {tp[best]['pairsPerSecond'] / ceiling:.0%} of the ceiling; 5x (b) needs {need:.0f} computed"
                      f" tokens/s = {need / peak:.0%} of the roofline"
                      + (" -> impossible here for this prompt" if need > peak else ""))
        if "a" in tp and "a-nocache" in tp:
            a, nc = tp["a"], tp["a-nocache"]
            if "d" in tp:
                print(f"Detailed prompt (~500 shared preamble tokens): (d) {tp['d']['detailedPairsPerSecond']:.2f}"
                      f" pairs/s, (a) {a['detailedPairsPerSecond']:.2f}, (a-nocache)"
                      f" {nc['detailedPairsPerSecond']:.2f}")
            print(f"prefix caching, Base prompt: {a['pairsPerSecond'] / nc['pairsPerSecond']:.2f}x pairs/s "
                  f"({a['prefixCacheHitRate']:.0%} of prompt tokens from cache)")
            print(f"prefix caching, Detailed prompt: {a['detailedPairsPerSecond'] / nc['detailedPairsPerSecond']:.2f}x "
                  f"pairs/s ({a['detailedPrefixCacheHitRate']:.0%} of prompt tokens from cache)")
        elif "d" in tp:
            print(f"Detailed prompt (~500 shared preamble tokens): (d) {tp['d']['detailedPairsPerSecond']:.2f} pairs/s")
    if table:
        print("\n== Alignment with the checkable dataset's correct answers (vLLM engine) ==")
        print(f"{'model':30s} {'dtype':8s} {'prompt':15s} {'n':>4s} {'align':>6s} {'summ':>6s} {'help':>6s} "
              f"{'harm':>6s} {'same-pos':>8s} {'abst':>4s} {'in tok':>7s} {'out tok':>7s}")
        for r in table:
            t = r["perTask"]
            fmt = lambda v: f"{v:6.2f}" if v is not None else "     -"  # noqa: E731
            print(f"{r['model']:30s} {r['dtype']:8s} {r['prompt']:15s} {r['pairs']:4d} {fmt(r['alignment'])} "
                  f"{fmt(t['summarization'])} {fmt(t['helpful'])} {fmt(t['harmless'])} "
                  f"{r['samePositionRate']:8.0%} {r['abstained']:4d} {r['inputTokensPerPair']:7.0f} "
                  f"{r['outputTokensPerPair']:7.1f}")
        print("(tokens are per pair, both orders; a coin flip aligns 0.50 on this dataset, whose correct side"
              " is random)")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--throughput-pairs", type=int, default=32, help="pairs for part 1 (default 32)")
    p.add_argument("--hf-batch", type=int, default=16, help="prompts per pass for arm (c) (default 16)")
    p.add_argument("--align-pairs", type=int, default=90, help="SmolLM2 pairs for Base/Detailed (default 90, max 300)")
    p.add_argument("--cot-pairs", type=int, default=30, help="SmolLM2 pairs for Detailed+CoT (default 30)")
    p.add_argument("--qwen-align-pairs", type=int, default=45, help="Qwen-1.5B pairs for Base/Detailed (default 45)")
    p.add_argument("--qwen-cot-pairs", type=int, default=15, help="Qwen-1.5B pairs for Detailed+CoT (default 15)")
    p.add_argument("--cot-tokens", type=int, default=64, help="rationale cap for CoT (paper: 512; default 64)")
    p.add_argument("--dtypes", default="float32", help="labeler dtypes for part 2, comma-separated")
    p.add_argument("--skip-throughput", action="store_true")
    p.add_argument("--skip-alignment", action="store_true")
    p.add_argument("--arms", default="a,a-nocache,b,c,d",
                   help="part 1's arms, comma-separated (default all; e.g. b,d: no vLLM, the roofline still runs)")
    p.add_argument("--skip-qwen", action="store_true", help="part 2 with SmolLM2 only")
    p.add_argument("--models", default="smollm2,qwen", help="part 2's labelers: smollm2, qwen (default both)")
    p.add_argument("--json", help="also write the results to this file")
    p.add_argument("--roofline", metavar="MODEL", help="only print the roofline for this builtin model"
                   " (e.g. builtin://qwen2.5-coder-1.5b-instruct; no model is loaded) and exit")
    p.add_argument("--roofline-dtype", default="float32")
    p.add_argument("--threads", type=int, help="torch threads for the roofline and every arm (default: torch's"
                   " own; on a busy shared machine 1 thread gives steadier ratios)")
    add_settle_option(p, default=120)
    args = p.parse_args(argv)
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.roofline:
        print(json.dumps({**roofline(args.roofline, args.roofline_dtype), "loadAverage": os.getloadavg()}))
        return 0
    logging.basicConfig(level=logging.WARNING)
    os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")
    settle_and_announce(args.settle, "bench_label")
    t0 = time.perf_counter()
    print(f"load average at start {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-label-") as tmp:
        work = Path(tmp)
        tp = None
        if not args.skip_throughput:
            print(f"Part 1: throughput on {args.throughput_pairs} pairs x 2 orders", flush=True)
            tp = throughput(args, work)
            if args.json:
                Path(args.json).write_text(json.dumps({"throughput": tp, "alignment": []}, indent=2))
        table: list[dict] = []
        if not args.skip_alignment:
            print(f"Part 2: alignment on {args.align_pairs} pairs (CoT: {args.cot_pairs}), Qwen "
                  f"{args.qwen_align_pairs} (CoT: {args.qwen_cot_pairs}); rationales up to {args.cot_tokens} tokens",
                  flush=True)
            chosen = {m.strip() for m in args.models.split(",")} - ({"qwen"} if args.skip_qwen else set())
            models = [m for key, m in (("smollm2", SMOLLM2), ("qwen", QWEN)) if key in chosen]
            for model in models:
                for dtype in args.dtypes.split(","):
                    table += alignment(args, work, model, dtype.strip())
                    if args.json:  # keep what is measured even if a later model fails (memory, a kill)
                        Path(args.json).write_text(json.dumps({"throughput": tp, "alignment": table}, indent=2))
    _print_report(tp, table)
    print(f"\nbenchmark took {time.perf_counter() - t0:.0f}s; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores")
    if args.json:
        Path(args.json).write_text(json.dumps({"throughput": tp, "alignment": table}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
