"""The RL algorithms, one small module each, behind one shape (see ``Algorithm``).

- reinforce: the paper's REINFORCE with a learned value baseline (default);
- rloo: REINFORCE leave-one-out, no value model;
- ppo: clipped PPO with the same reward shaping, for comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from rlaif_jobs.policy.algorithms import ppo, reinforce, rloo


@dataclass(frozen=True)
class Algorithm:
    """What the trainer needs from an algorithm.

    targets(scores [B], kl_tokens [B,T], mask, values_old [B,T] | None, beta, group) ->
        (advantages [B,T], returns [B,T] | None), detached;
    policy_loss(logprobs, old_logprobs, advantages, mask, clip_range) -> (loss, stats);
    value_loss(values, old_values, returns, mask, clip_range) -> loss, or None without a value model;
    multi_epoch: whether the update makes rl.ppoEpochs passes over each rollout batch (PPO) or one;
    group_targets: whether a response's targets depend only on its own prompt's group of responses
        (so whole groups can be scored micro-batch by micro-batch), not on the whole batch (PPO whitens).
    """

    name: str
    uses_value: bool
    targets: Callable
    policy_loss: Callable
    value_loss: Callable | None
    multi_epoch: bool
    group_targets: bool


def _wrap(module: ModuleType, multi_epoch: bool = False, group_targets: bool = True) -> Algorithm:
    return Algorithm(name=module.NAME, uses_value=module.USES_VALUE, targets=module.targets,
                     policy_loss=module.policy_loss, value_loss=module.value_loss, multi_epoch=multi_epoch,
                     group_targets=group_targets)


ALGORITHMS: dict[str, Algorithm] = {
    "reinforce": _wrap(reinforce),
    "rloo": _wrap(rloo),
    "ppo": _wrap(ppo, multi_epoch=True, group_targets=False),
}


def get_algorithm(name: str) -> Algorithm:
    """The algorithm called ``name`` (reinforce, rloo or ppo)."""
    try:
        return ALGORITHMS[name]
    except KeyError:
        raise ValueError(f"unknown algorithm {name!r}; use one of {', '.join(ALGORITHMS)}") from None
