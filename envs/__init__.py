"""Gymnasium environments (installed as ``deepexpose.envs``)."""
