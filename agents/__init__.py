"""Agents and baselines (installed as ``deepexpose.agents``)."""
