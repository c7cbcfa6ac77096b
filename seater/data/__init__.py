"""Datasets, loaders, synthetic data and evaluation protocols."""

from seater.data.interactions import Interactions
from seater.data.types import EvalSet, Split, TrainSamples

__all__ = ["Interactions", "EvalSet", "Split", "TrainSamples"]
