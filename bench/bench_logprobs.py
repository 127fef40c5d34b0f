"""Benchmark: the policy's fused vocabulary log-probs against autograd's composite, same run, same logits.

The policy update scores each response token under a 49k-token vocabulary: log softmax(z / T)[token],
the entropy as a metric, and the backward of the log-probs; the reference scores the same tokens
without a graph. ``rlaif_jobs.policy.kl`` does this in one autograd function over row chunks; the
baseline is what it replaced (divide, log_softmax, gather, -sum p log p, autograd's backward).
Printed: milliseconds per call for both, and the ratio, for the update's pass (forward and backward)
and the reference's (inference mode), with the load average before and after.

    python bench/bench_logprobs.py                 # [502, 49152]: the policy bench's update batch
    python bench/bench_logprobs.py --rows 2048 --reps 5
"""

from __future__ import annotations

import argparse
import os
import time

import torch

from rlaif_jobs.policy.kl import logprobs_and_entropy, token_logprobs


def composite(logits: torch.Tensor, tokens: torch.Tensor, temperature: float, entropy: bool
              ) -> tuple[torch.Tensor, torch.Tensor | None]:
    logp = torch.log_softmax(logits.float() / temperature, dim=-1)
    picked = logp.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
    if not entropy:
        return picked, None
    with torch.no_grad():
        return picked, -logp.exp().mul_(logp).sum(-1)


def per_call(fn, reps: int) -> float:
    fn()
    start = time.perf_counter()
    for _ in range(reps):
        fn()
    return (time.perf_counter() - start) / reps * 1e3


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, default=502, help="response tokens scored at once")
    p.add_argument("--vocab", type=int, default=49152)
    p.add_argument("--temperature", type=float, default=0.9)
    p.add_argument("--reps", type=int, default=10)
    args = p.parse_args()
    if args.rows < 1 or args.vocab < 2 or args.reps < 1 or args.temperature <= 0:
        p.error("--rows and --reps must be at least 1, --vocab at least 2, --temperature above 0")
    g = torch.Generator().manual_seed(0)
    logits = (torch.randn(args.rows, args.vocab, generator=g) * 3).requires_grad_()
    tokens = torch.randint(0, args.vocab, (args.rows,), generator=g)

    def update(fn):
        def run() -> None:
            lp, _ = fn(logits, tokens, args.temperature, True)
            lp.sum().backward()
            logits.grad = None
        return run

    def reference(fn):
        def run() -> None:
            with torch.inference_mode():
                fn(logits, tokens, args.temperature, False)
        return run

    def fused(z, t, temp, entropy):
        return logprobs_and_entropy(z, t, temp) if entropy else (token_logprobs(z, t, temp), None)

    load = os.getloadavg()
    print(f"[{args.rows}, {args.vocab}] float32, temperature {args.temperature}, {torch.get_num_threads()} threads,"
          f" load average before {load[0]:.2f}")
    for name, wrap in (("update (forward + backward)", update), ("reference (inference)", reference)):
        # interleaved twice, so a change in the machine's load falls on both sides
        base, ours = [], []
        for _ in range(2):
            base.append(per_call(wrap(composite), args.reps))
            ours.append(per_call(wrap(fused), args.reps))
        b, o = min(base), min(ours)
        print(f"{name:28s} composite {b:7.1f} ms | fused {o:7.1f} ms | {b / o:.2f}x")
    print(f"load average after {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
