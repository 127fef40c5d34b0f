"""Stage 3 of RLAIF: policy RL against a reward model (canonical RLAIF) or the labeler (d-RLAIF).

Modules: ``kl`` and ``advantages`` (the math), ``algorithms`` (reinforce, rloo, ppo), ``rewards``
(reward sources), ``rollout`` / ``rollout_vllm`` (sampling engines and weight sync), ``models``
(policy, reference, value), ``prompts``, ``evaluate`` (win rates), ``trainer`` (the loop).
Entry point: ``python -m rlaif_jobs.policy --config FILE`` (under torchrun for several ranks).
"""
