"""A package of workflows that share one task environment and some utilities."""
