"""Datasets, loaders, synthetic data and evaluation protocols."""

from seater.data.interactions import Interactions
from seater.data.loaders import (
    FORMATS,
    item_attribute_matrix,
    load_comirec,
    load_dataset,
    load_lightgcn,
    load_s3rec,
    load_yambda,
    write_s3rec,
)
from seater.data.splits import PROTOCOLS, leave_one_out, make_split, pad_left, user_split
from seater.data.synthetic import make_synthetic, synthetic_embeddings
from seater.data.types import EvalSet, Split, TrainSamples

__all__ = [
    "Interactions",
    "EvalSet",
    "Split",
    "TrainSamples",
    "FORMATS",
    "PROTOCOLS",
    "item_attribute_matrix",
    "load_comirec",
    "load_dataset",
    "load_lightgcn",
    "load_s3rec",
    "load_yambda",
    "leave_one_out",
    "make_split",
    "make_synthetic",
    "pad_left",
    "synthetic_embeddings",
    "user_split",
    "write_s3rec",
]
