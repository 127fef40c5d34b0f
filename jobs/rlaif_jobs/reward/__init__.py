"""Stage 2, the RewardModelRun workload: a scalar reward model fitted to soft AI preferences.

``python -m rlaif_jobs.reward --config FILE`` (under torchrun for several processes). Modules:
``format`` (the text a reward model scores; shared with the RL stage), ``packing`` (both texts
of a pair in one row, the shared prompt computed once), ``scorer``
(RewardModelScorer: batched scores from a trained folder), ``loss`` (the soft-label loss), ``data``
(the labels file), ``model`` (base model as a one-label classifier), ``trainer`` (the run itself).
"""
