"""Protocols: leave_one_out and user_split on hand-made sequences, pad_left, make_split."""

import numpy as np
import pytest

from seater.data import Interactions, leave_one_out, make_split, pad_left, user_split
from seater.errors import ConfigError


def _inter(seqs):
    seqs = [np.asarray(s, dtype=np.int64) for s in seqs]
    n_items = int(max(s.max() for s in seqs if len(s)))
    return Interactions(seqs, n_items, np.arange(len(seqs)), np.arange(n_items + 1), name="toy")


def test_pad_left():
    out = pad_left([np.array([1, 2, 3]), np.array([4]), np.array([], dtype=np.int64)], 2)
    assert out.dtype == np.int64
    assert out.tolist() == [[2, 3], [0, 4], [0, 0]]
    with pytest.raises(ConfigError, match="length must be a positive integer, got 0"):
        pad_left([np.array([1])], 0)
    with pytest.raises(ConfigError, match="max_history must be a positive integer"):
        leave_one_out(_inter([[1, 2, 3]]), max_history=-1)


def test_leave_one_out_by_hand():
    sp = leave_one_out(_inter([[1, 2, 3, 4, 5], [6, 7, 8], [9, 10]]), max_history=3)
    assert sp.n_dropped_users == 1  # the 2-item user cannot give train + valid + test
    assert sp.test.users.tolist() == [0, 1]
    assert sp.test.histories.tolist() == [[2, 3, 4], [0, 6, 7]]
    assert [t.tolist() for t in sp.test.truth] == [[5], [8]]
    assert sp.valid.histories.tolist() == [[1, 2, 3], [0, 0, 6]]
    assert [t.tolist() for t in sp.valid.truth] == [[4], [7]]
    assert [s.tolist() for s in sp.train_sequences] == [[1, 2, 3], [6]]
    assert sp.train.histories.tolist() == [[0, 0, 1], [0, 1, 2]]
    assert sp.train.targets.tolist() == [2, 3]
    assert sp.train.users.tolist() == [0, 0]
    assert (sp.protocol, sp.max_history, sp.n_items) == ("leave_one_out", 3, 10)


def test_user_split_short_sequences_cut():
    # lengths 1..10: the 1-item user is dropped; ctx = clip(floor(0.8 n), 1, n - 1)
    seqs = [list(range(100 * n + 1, 100 * n + 1 + n)) for n in range(1, 11)]
    inter = _inter(seqs)
    # put everyone in eval sets to inspect the cut: a tiny train share, 9 eligible users
    sp = user_split(inter, seed=0, max_history=3, ratios=(0.01, 0.495, 0.495))
    assert sp.n_dropped_users == 1
    ctx_len = {2: 1, 3: 2, 4: 3, 5: 4, 6: 4, 7: 5, 8: 6, 9: 7, 10: 8}
    for es in (sp.valid, sp.test):
        for u, h, t in zip(es.users, es.histories, es.truth):
            n = len(seqs[u])
            c = ctx_len[n]
            assert t.tolist() == seqs[u][c:]
            assert h.tolist() == ([0] * max(0, 3 - c) + seqs[u][:c])[-3:]


def test_user_split_8_1_1_disjoint_reproducible():
    rng = np.random.default_rng(0)
    seqs = [rng.integers(1, 50, size=rng.integers(1, 15)) for _ in range(1000)]
    inter = _inter(seqs)
    n_eligible = sum(len(s) >= 2 for s in seqs)
    sp = user_split(inter, seed=7)
    train_users = np.unique(sp.train.users)
    sizes = (len(sp.train_sequences), len(sp.valid), len(sp.test))
    assert sizes[0] == round(0.8 * n_eligible) and sizes[1] == round(0.1 * n_eligible)
    assert sum(sizes) == n_eligible and sp.n_dropped_users == 1000 - n_eligible
    groups = [set(train_users.tolist()), set(sp.valid.users.tolist()), set(sp.test.users.tolist())]
    assert not (groups[0] & groups[1] or groups[0] & groups[2] or groups[1] & groups[2])
    assert len(groups[0]) == sizes[0]  # every train user (>= 2 items) gives samples
    assert len(sp.train) == sum(len(s) - 1 for s in sp.train_sequences)
    again = user_split(inter, seed=7)
    assert np.array_equal(again.test.users, sp.test.users) and np.array_equal(again.train.histories, sp.train.histories)
    other = user_split(inter, seed=8)
    assert not np.array_equal(other.test.users, sp.test.users)


def test_user_split_train_samples_are_prefix_next_pairs():
    inter = _inter([[1, 2, 3, 4]] * 10)
    sp = user_split(inter, seed=0, max_history=2)
    first = sp.train.users == sp.train.users[0]
    assert sp.train.histories[first].tolist() == [[0, 1], [1, 2], [2, 3]]
    assert sp.train.targets[first].tolist() == [2, 3, 4]


def test_make_split_dispatch_and_errors():
    inter = _inter([[1, 2, 3]] * 10)
    assert make_split(inter, "leave_one_out", seed=3).seed == 3
    assert make_split(inter, "user_split", seed=3, max_history=5).max_history == 5
    with pytest.raises(ConfigError, match="unknown protocol 'loo'; known: leave_one_out, user_split"):
        make_split(inter, "loo")
    with pytest.raises(ConfigError, match="ratios"):
        user_split(inter, ratios=(1, 1))
    with pytest.raises(ConfigError, match="context_fraction"):
        user_split(inter, context_fraction=1.0)


def test_a_split_with_nothing_to_train_or_test_on_is_one_clear_error():
    from seater.errors import DataError

    short = _inter([[1, 2], [2, 1], [3]])
    with pytest.raises(DataError, match=r"the leave_one_out split has no training interactions: leave_one_out needs users "
                                        r"with at least 3 items .*\(3 users, 3 with fewer than 3 items\)"):
        make_split(short, "leave_one_out")
    with pytest.raises(DataError, match=r"the user_split split has no (training interactions|test users).*\(3 users, 1 with fewer than 2"):
        make_split(short, "user_split")


@pytest.mark.parametrize("seqs,n_items,bad", [([[1, 0, 2]], 3, "item id 0"), ([[1, 2, 9]], 3, "item id 9"), ([[1, -4]], 3, "item id -4")])
def test_item_ids_outside_the_catalog_are_refused(seqs, n_items, bad):
    """A 0 (padding) as a test item made the user's metrics nan and silently left the averages; an id
    above n_items can never be recommended."""
    from seater.errors import DataError

    with pytest.raises(DataError, match=f"{bad} in the sequences is outside 1..{n_items}"):
        Interactions([np.asarray(s) for s in seqs], n_items, np.arange(len(seqs)), np.arange(n_items + 1))
    with pytest.raises(DataError, match="integer item ids"):
        Interactions([np.array([1.0, 2.0])], 3, np.arange(1), np.arange(4))
    Interactions([np.array([1, 2]), np.array([])], 3, np.arange(2), np.arange(4))  # an empty row (float64 []) is fine
