"""baselines layer."""
