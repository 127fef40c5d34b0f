"""Stage 2: fit a scalar reward model to soft AI preferences with a DeepSpeed engine.

``train_reward_model(config)`` runs on every rank of a torchrun job (or alone). In order:
1. checks everything that could make training pointless before anything slow: the output location,
   the batch arithmetic for this world size, the labels file (present, non-empty, pA in [0, 1]), that
   there is at least one batch of training pairs, the base model and tokenizer, the DeepSpeed config;
2. joins the process group and builds the engine (ZeRO stage, precision, accumulation, clipping,
   gradient checkpointing from the spec);
3. resumes from the newest complete checkpoint if there is one (weights, optimizer, LR schedule and
   the step, which fixes the data position: see rlaif_jobs.train.sampler);
4. trains with the soft-label loss (each micro-batch one packed row where the model allows it:
   the pair's shared prompt computed once, no padding; see rlaif_jobs.reward.packing), logging
   loss/accuracy per step, evaluating on the held-out pairs (at the start, every evalEverySteps, at
   the end), checkpointing every checkpointEverySteps and at the end;
5. reports beside the eval loss the labels' entropy (``evalLossFloor``: no model can go below it, and ln 2
   means it learned nothing) and each accuracy's 95% Wilson interval; writes ``<output>/model`` (an HF
   folder), ``<output>/metrics.jsonl`` and ``summary.json``.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from rlaif_jobs.config.reward import RewardConfig
from rlaif_jobs.errors import ConfigError
from rlaif_jobs.reward.data import PreferencePair, load_preferences, split_holdout
from rlaif_jobs.reward.format import encode_reward_inputs, reward_input, tokenize_reward_inputs
from rlaif_jobs.reward.loss import loss_floor, preferred_a, soft_label_loss, wilson_interval
from rlaif_jobs.reward.model import load_reward_model
from rlaif_jobs.reward.packing import pack_pairs, packed_scores, supports_packing
from rlaif_jobs.train import (
    BatchPlan,
    DistEnv,
    ShardedSampler,
    all_reduce_sum,
    build_ds_config,
    build_engine,
    current_lr,
    eval_shards,
    init_distributed,
    plan_batches,
    regroup_by_length,
    shutdown,
    world_size_from_env,
    zero_stage_note,
)
from rlaif_jobs.train.run import TrainingRun, output_dir
from rlaif_jobs.train.trackers import check_tracking

log = logging.getLogger(__name__)
ENGINE = "model"  # the engine's name inside checkpoints


class _Texts:
    """reward_input strings (and their token ids) per pair, rendered once and kept (the chat template
    is not free)."""

    def __init__(self, tokenizer: Any, pairs: list[PreferencePair], max_length: int):
        self.tok, self.pairs, self.max_length = tokenizer, pairs, max_length
        self.cache: dict[int, Any] = {}
        self.id_cache: dict[int, Any] = {}

    def length(self, i: int) -> int:
        """Characters of the longer of the two texts: a cheap proxy for the padded token length."""
        a, b = self.get(i)
        return max(len(a), len(b))

    def get(self, i: int) -> tuple[str, str]:
        if i not in self.cache:
            x = self.pairs[i]
            self.cache[i] = (reward_input(self.tok, x.context, x.response_a),
                             reward_input(self.tok, x.context, x.response_b))
        return self.cache[i]

    def ids(self, i: int) -> tuple[list[int], list[int]]:
        """Token ids of both texts, truncated as in a padded batch."""
        if i not in self.id_cache:
            a, b = encode_reward_inputs(self.tok, list(self.get(i)), self.max_length)
            self.id_cache[i] = (a, b)
        return self.id_cache[i]


def packing_mode(spec: Any, model: Any) -> bool:
    """Whether to train on packed rows: training.packing, or by default whenever the model supports
    it. Raises ConfigError naming training.packing when it is required and the model cannot."""
    why_not = supports_packing(model)
    if spec.packing and why_not:
        raise ConfigError(f"training.packing: true, but this base model cannot be packed ({why_not}); set"
                          " training.packing to false (padded batches) or leave it unset")
    return why_not is None if spec.packing is None else spec.packing


def _scores(engine: Any, tokenizer: Any, texts: _Texts, idx: list[int], max_length: int, device: Any,
            packed: bool = False):
    """Scores (r_a, r_b) of pairs ``idx`` in one forward pass: one packed row (see reward.packing),
    or a padded batch of the 2k sequences."""
    if packed:
        model = engine.module
        return packed_scores(model, pack_pairs([texts.ids(i) for i in idx], model.config.pad_token_id), engine)
    ab = [texts.get(i) for i in idx]
    enc = tokenize_reward_inputs(tokenizer, [a for a, _ in ab] + [b for _, b in ab], max_length)
    out = engine(input_ids=enc["input_ids"].to(device), attention_mask=enc["attention_mask"].to(device))
    r = out.logits.squeeze(-1).float()
    k = len(idx)
    return r[:k], r[k:]


def evaluate(engine: Any, tokenizer: Any, pairs: list[PreferencePair], texts: _Texts, env: DistEnv,
             micro_batch: int, max_length: int, packed: bool = False) -> dict[str, float]:
    """Held-out loss and pairwise accuracy, over all ranks (collective).

    evalAccuracy: against the human label where a pair has one, else against the AI label's argmax;
    evalAccuracyHuman / evalAccuracyAi: against each alone (ties p = 0.5 count for neither).
    """
    import torch

    # [loss*w, w, correct_ref, n_ref, correct_human, n_human, correct_ai, n_ai]
    sums = [0.0] * 8
    engine.eval()
    with torch.no_grad():
        for chunk in eval_shards(len(pairs), env.world_size, env.rank, micro_batch):
            idx = [i for i, _ in chunk]
            w = torch.tensor([wt for _, wt in chunk])
            r_a, r_b = _scores(engine, tokenizer, texts, idx, max_length, env.device, packed)
            p = torch.tensor([pairs[i].p for i in idx])
            loss = soft_label_loss(r_a, r_b, p.to(r_a.device), reduction="none").cpu()
            sums[0] += float((loss * w).sum())
            sums[1] += float(w.sum())
            a_wins = (r_a > r_b).cpu().tolist()
            for j, i in enumerate(idx):
                if w[j] == 0:
                    continue
                x = pairs[i]
                for slot, ref in ((2, preferred_a(x.p, x.human)), (4, preferred_a(None, x.human)),
                                  (6, preferred_a(x.p))):
                    if ref is not None:
                        sums[slot] += float(a_wins[j] == ref)
                        sums[slot + 1] += 1
    engine.train()
    s = all_reduce_sum(sums, env)
    ratio = lambda a, b: a / b if b else float("nan")  # noqa: E731
    out = {"evalLoss": ratio(s[0], s[1]), "evalAccuracy": ratio(s[2], s[3]),
           "evalAccuracyHuman": ratio(s[4], s[5]), "evalAccuracyAi": ratio(s[6], s[7]),
           "evalPairs": s[1], "evalHumanPairs": s[5]}
    for name, (correct, n) in (("evalAccuracy", (s[2], s[3])), ("evalAccuracyHuman", (s[4], s[5])),
                               ("evalAccuracyAi", (s[6], s[7]))):
        out[f"{name}Low"], out[f"{name}High"] = wilson_interval(correct, n)
    return out


def _check_inputs(config: RewardConfig) -> tuple[BatchPlan, dict[str, Any], list[PreferencePair],
                                                  list[PreferencePair], list[PreferencePair]]:
    """Step 1: (batch plan, DeepSpeed config, all pairs, training pairs, held-out pairs); ConfigError
    when the preferences are unusable or fewer than one batch remains for training."""
    import torch

    spec = config.training
    plan = plan_batches(spec, world_size_from_env(), "training")
    ds_config = build_ds_config(spec, plan, "cuda" if torch.cuda.is_available() else "cpu", "training")
    pairs = load_preferences(config.preferences_uri)
    train, held = split_holdout(pairs, spec.eval_fraction, spec.seed)
    if len(train) < plan.global_batch:
        raise ConfigError(f"training.batchSize: {plan.global_batch} is more than the {len(train)} training pairs"
                          f" in {config.preferences_uri} (after holding out {len(held)}); lower it")
    return plan, ds_config, pairs, train, held


def _train_micro_batch(engine: Any, tokenizer: Any, texts: _Texts, train: list[PreferencePair], idx: list[int],
                       max_length: int, device: Any, packed: bool, window: list[float]) -> None:
    """Forward, soft-label loss, backward and step on the pairs ``idx``; adds to ``window`` (loss x n,
    n, right, judged: the running figures of the next log line)."""
    import torch

    r_a, r_b = _scores(engine, tokenizer, texts, idx, max_length, device, packed)
    loss = soft_label_loss(r_a, r_b, torch.tensor([train[i].p for i in idx], device=r_a.device))
    engine.backward(loss)
    engine.step()
    with torch.no_grad():
        window[0] += float(loss) * len(idx)
        window[1] += len(idx)
        for a_wins, i in zip((r_a > r_b).tolist(), idx, strict=True):
            ref = preferred_a(train[i].p)
            if ref is not None:
                window[2] += float(a_wins == ref)
                window[3] += 1


class _HeldOutEval:
    """Evaluates on the held-out pairs when called with a step, logs it, and remembers the last result
    (kept in the checkpoint, so a resumed run reports it)."""

    def __init__(self, engine: Any, tokenizer: Any, held: list[PreferencePair], env: DistEnv, batch: int,
                 max_length: int, packed: bool, run: TrainingRun):
        self.engine, self.tokenizer, self.held, self.env, self.run = engine, tokenizer, held, env, run
        self.batch, self.max_length, self.packed = batch, max_length, packed
        self.texts = _Texts(tokenizer, held, max_length)
        self.last: dict[str, float] = run.saved.get("lastEval", {})
        self.step: int = run.saved.get("lastEvalStep", -1)

    def __call__(self, step: int) -> None:
        if not self.held:
            return
        self.last = evaluate(self.engine, self.tokenizer, self.held, self.texts, self.env, self.batch,
                             self.max_length, self.packed)
        self.step = step
        self.run.metrics.log(step, **self.last)
        if self.env.is_main:
            log.info("step %d: eval loss %.4f accuracy %.3f", step, self.last["evalLoss"], self.last["evalAccuracy"])

    def state(self) -> dict[str, Any]:
        return {"lastEval": self.last, "lastEvalStep": self.step}


def _train(run: TrainingRun, spec: Any, sampler: ShardedSampler, total_steps: int, engine: Any, tokenizer: Any,
           texts: _Texts, train: list[PreferencePair], packed: bool, held_eval: _HeldOutEval
           ) -> tuple[list[float], float]:
    """Step 4: every step from the resume point on, with a log line every ``logEverySteps``, an eval every
    ``evalEverySteps`` and a checkpoint every ``checkpointEverySteps``. Returns (the last training losses
    logged, seconds spent training)."""
    env = run.env
    eval_every = spec.eval_every_steps or spec.checkpoint_every_steps
    recent: list[float] = list(run.saved.get("recentTrainLoss", []))
    window = [0.0, 0.0, 0.0, 0.0]  # loss*n, n, correct, n_acc since the last log line
    train_seconds, window_t = 0.0, time.time()
    for batch in sampler.steps(run.start, total_steps):
        t_step = time.time()
        for idx in regroup_by_length(batch.micro_batches, texts.length):
            _train_micro_batch(engine, tokenizer, texts, train, idx, spec.max_length, env.device, packed, window)
        train_seconds += time.time() - t_step
        step = batch.global_step
        if step % spec.log_every_steps == 0 or step == total_steps:
            s = all_reduce_sum(window, env)
            now = time.time()
            train_loss = s[0] / max(s[1], 1)
            recent = (recent + [train_loss])[-10:]
            run.metrics.log(step, trainLoss=train_loss, trainAccuracy=s[2] / s[3] if s[3] else None,
                            learningRate=current_lr(engine), epoch=round(step / sampler.steps_per_epoch, 4),
                            samplesPerSecond=s[1] / max(now - window_t, 1e-9))
            run.bar.set_postfix(loss=f"{train_loss:.4f}")
            window, window_t = [0.0, 0.0, 0.0, 0.0], now
        t_pause = time.time()
        if step % eval_every == 0 or step == total_steps:
            held_eval(step)
        run.step_done(step, {"epoch": batch.epoch, "stepInEpoch": batch.step_in_epoch + 1,
                             "recentTrainLoss": recent, **held_eval.state()})
        window_t += time.time() - t_pause  # the logged samples/s counts training time only
    return recent, train_seconds


def _label_figures(pairs: list[PreferencePair], train: list[PreferencePair], held: list[PreferencePair]
                   ) -> dict[str, float]:
    """What the labels allow: their counts and entropy, the floor under the soft-label loss (ln 2 = 0.693
    is a model that learned nothing), and their mean confidence."""
    return {"trainPairs": len(train), "heldOutPairs": len(held),
            "trainLossFloor": loss_floor([x.p for x in train]), "evalLossFloor": loss_floor([x.p for x in held]),
            "meanLabelConfidence": sum(max(x.p, 1 - x.p) for x in pairs) / len(pairs)}


def train_reward_model(config: RewardConfig) -> dict[str, Any]:
    """Trains, exports and reports (see the module docstring). Returns the summary on rank 0, the
    metrics dict elsewhere. Raises ConfigError subclasses (exit code 3) for bad input, before training."""
    t0 = time.time()
    spec = config.training
    out = output_dir(config.output.uri, "the reward trainer")
    check_tracking(config.tracking)  # an enabled tracker whose package is missing: exit 3 now, not after loading

    # 1. Input checks, cheapest first, before any process group exists (a bad input must not hang).
    plan, ds_config, pairs, train, held = _check_inputs(config)
    import torch

    torch.manual_seed(spec.seed)  # the new score head starts identical on every rank
    tokenizer, model = load_reward_model(config.base_model, spec.score_head_init)
    tokenizer.model_max_length = spec.max_length  # saved with the model: the scorer truncates alike
    tokenizer.truncation_side = "left"
    packed = packing_mode(spec, model)
    if spec.lora is not None:  # adapters on the base, the score head trained whole (PEFT's SEQ_CLS task)
        from rlaif_jobs.train.lora import apply_lora

        model = apply_lora(model, spec.lora, "training.lora", task_type="SEQ_CLS")

    # 2. Distributed engine.
    env = init_distributed()
    sampler = ShardedSampler(len(train), plan, env.rank, seed=spec.seed)
    total_steps = max(1, math.ceil(spec.epochs * sampler.steps_per_epoch))
    engine = build_engine(model, spec, ds_config, total_steps)

    # 3. Resume.
    run = TrainingRun(out, spec, env, {ENGINE: engine}, total_steps, desc="reward", tracking=config.tracking,
                      params=config.to_wire())
    start = run.start
    if not run.resumed and env.is_main:
        log.info("%d training pairs, %d held out; %d steps of %d pairs (%d ranks x %d micro x %d accumulation)",
                 len(train), len(held), total_steps, plan.global_batch, env.world_size, plan.micro_batch,
                 plan.grad_accum)

    train_texts = _Texts(tokenizer, train, spec.max_length)
    held_eval = _HeldOutEval(engine, tokenizer, held, env, plan.micro_batch * 2, spec.max_length, packed, run)
    if start == 0:
        held_eval(0)  # the starting point, to compare the trained model against

    # 4. Train.
    recent, train_seconds = _train(run, spec, sampler, total_steps, engine, tokenizer, train_texts, train, packed,
                                   held_eval)
    if held_eval.step != total_steps:
        held_eval(total_steps)  # e.g. a restart after the final checkpoint: report the final model
    run.finish({"recentTrainLoss": recent, **held_eval.state()})
    last_eval = held_eval.last

    # 5. Export and report.
    run.export(engine, tokenizer, base_uri=config.base_model.uri)
    results: dict[str, Any] = {
        **{k: v for k, v in last_eval.items() if isinstance(v, float) and v == v},
        "trainLoss": sum(recent) / len(recent) if recent else float("nan"),
        "samplesPerSecond": run.steps_done * plan.global_batch / train_seconds if train_seconds > 0 else float("nan"),
        "steps": total_steps, "stepsThisRun": run.steps_done, "resumedFromStep": start,
        **_label_figures(pairs, train, held), "worldSize": env.world_size, "elapsedSeconds": time.time() - t0,
    }
    summary = run.report(
        config.output.uri, "reward", results,
        extra={"baseModel": config.base_model.uri, "preferences": config.preferences_uri,
               "deepspeed": {**zero_stage_note(spec, ds_config),
                             "precision": spec.precision, "gradientAccumulation": plan.grad_accum},
               "packing": packed})
    shutdown()
    return summary
