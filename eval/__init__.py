"""Evaluation: the question set, pure metric functions, the baselines to beat, and the runner."""
