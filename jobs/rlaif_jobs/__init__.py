"""rlaif workloads: labeling, reward modeling, policy RL, evaluation. Never imports rlaif_operator."""
