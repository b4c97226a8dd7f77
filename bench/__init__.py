"""Benchmark suite for training-free, distillation-aware neural architecture search."""

__version__ = "0.1.0"
