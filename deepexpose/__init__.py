"""deepexpose: learn to fix exposure and colour the way a colourist would (DeepExposure, NeurIPS 2018)."""

__version__ = "0.1.0"
