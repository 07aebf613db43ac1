"""ARIES trainer: preference optimisation on self-refinement trajectories (see docs/dataset-format.md)."""

__version__ = "0.1.0"
