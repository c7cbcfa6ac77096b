"""Slow: the real S3-Rec Beauty/Sports files from ../shared/data (skipped when absent)."""

import numpy as np
import pytest

from seater.data import leave_one_out, user_split
from seater.data.loaders import item_attribute_matrix, load_dataset

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name, expected", [("beauty", (22363, 12101, 198502)), ("sports", (35598, 18357, 296337))])
def test_counts_and_attributes(name, expected, request):
    inter = load_dataset(request.getfixturevalue(f"{name}_path"))
    assert (inter.n_users, inter.n_items, inter.n_interactions) == expected
    assert inter.item_ids[1:].tolist() == list(range(1, inter.n_items + 1))  # already contiguous: ids kept
    assert item_attribute_matrix(inter).shape[0] == inter.n_items


def test_leave_one_out_on_beauty(beauty_path):
    inter = load_dataset(beauty_path)
    sp = leave_one_out(inter)
    assert len(sp.test) == 22363 and sp.n_dropped_users == 0
    last = np.array([s[-1] for s in inter.sequences])
    assert np.array_equal(np.concatenate(sp.test.truth), last[sp.test.users])
    assert np.array_equal(sp.test.histories[:, -1], np.array([s[-2] for s in inter.sequences]))
    assert len(sp.train) == sum(len(s) - 3 for s in inter.sequences)


def test_user_split_on_beauty(beauty_path):
    sp = user_split(load_dataset(beauty_path), seed=0)
    assert (len(sp.train_sequences), len(sp.valid), len(sp.test)) == (17890, 2236, 2237)
