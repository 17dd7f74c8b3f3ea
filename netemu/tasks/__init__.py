"""Tasks: what the nodes start with (and, for optimization, what they minimise)."""
