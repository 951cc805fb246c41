"""Training: ``fit``, the one loop every family trains with (resumable checkpoints, schedule, logs), and
``recipes/``, one per shipped bundle, each rebuilding it from nothing with ``dreamgym train RECIPE``."""
