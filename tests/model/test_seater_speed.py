"""The retrieval speed benchmark: synthetic balanced trees are balanced; a tiny run writes its files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from bench.speed.retrieval import RetrievalSpeedConfig, balanced_codes, balanced_random_tree, run_retrieval_speed, write_results


@pytest.mark.parametrize("n,k", [(2, 2), (17, 16), (100, 3), (1000, 16), (4097, 16)])
def test_balanced_random_tree_is_balanced(n, k):
    tree = balanced_random_tree(n, k, seed=1)
    tree.validate(balanced=True)
    assert tree.n_items == n and tree.depth == int(np.ceil(np.log(n) / np.log(k) - 1e-9))


def test_balanced_codes_keep_the_given_leaf_order():
    order = np.array([3, 0, 2, 1, 4])
    codes = balanced_codes(order, 2)
    ranked = np.lexsort(codes.T[::-1])  # items sorted by identifier = left-to-right leaves
    np.testing.assert_array_equal(ranked, order)


def test_tiny_speed_run_writes_markdown_and_json(tmp_path):
    cfg = RetrievalSpeedConfig(sizes=(60, 120), k=4, beam=5, topk=5, beams=(2, 5), users=4, users_large=4, batch=4,
                               train_batch=4, train_steps=1, d_model=16)
    result = run_retrieval_speed(cfg, log=lambda *_: None)
    kinds = [(r["kind"], r["n_items"]) for r in result["rows"]]
    assert kinds.count(("beam", 60)) == 2 and ("beam", 120) in kinds and ("exact", 120) in kinds and ("train", 60) in kinds
    assert all(r.get("users_per_s", r.get("samples_per_s", 0)) > 0 for r in result["rows"])
    paths = write_results(result, tmp_path, {"command": "test", "commit": "x", "hardware": "cpu", "python": "3", "date": "d"}, png=False)
    assert {p.suffix for p in paths} == {".md", ".json"}
    assert json.loads((tmp_path / "speed_retrieval.json").read_text())["rows"] == result["rows"]
    assert "| 120 |" in (tmp_path / "speed_retrieval.md").read_text()


def test_speed_rows_record_their_real_batch_and_every_timed_run(monkeypatch):
    """A batch above the users timed was recorded as given (the curve mixed batch sizes unlabelled);
    every figure was one timed run; the training step left out the loop's gradient clipping."""
    clipped = []
    real_clip = torch.nn.utils.clip_grad_norm_
    monkeypatch.setattr(torch.nn.utils, "clip_grad_norm_", lambda params, c: clipped.append(c) or real_clip(params, c))
    cfg = RetrievalSpeedConfig(sizes=(60,), k=4, beam=5, topk=5, beams=(5,), users=4, batch=8, train_batch=4, train_steps=2,
                               d_model=16, repeats=3)
    rows = run_retrieval_speed(cfg, log=lambda *_: None)["rows"]
    for r in rows:
        assert len(r["seconds_each"]) == 3 and r["seconds"] == sorted(r["seconds_each"])[1] and r["seconds_min"] == min(r["seconds_each"])
    assert all(r["batch"] == 4 for r in rows if r["kind"] in ("beam", "exact"))
    assert clipped and set(clipped) == {5.0}  # seater's grad_clip, every step (warm-up and 3 runs of 2 steps)
    assert len(clipped) == 4 * 2


def test_speed_run_times_a_second_attention_beside_the_first(tmp_path):
    cfg = RetrievalSpeedConfig(sizes=(60,), k=4, beam=5, topk=5, beams=(2, 5), users=4, batch=4, train_batch=4, train_steps=1,
                               d_model=16, attentions=("auto", "math"))
    result = run_retrieval_speed(cfg, log=lambda *_: None)
    beam = [(r["beam"], r["attention"]) for r in result["rows"] if r["kind"] == "beam"]
    assert beam == [(2, "auto"), (5, "auto"), (5, "math")]  # the second only at the curve's beam width
    assert [r["attention"] for r in result["rows"] if r["kind"] == "train"] == ["auto", "math"]
    write_results(result, tmp_path, {"command": "test", "commit": "x", "hardware": "cpu", "python": "3", "date": "d"}, png=False)
    md = (tmp_path / "speed_retrieval.md").read_text()
    assert "| n_items | what | auto | math |" in md and md.count("| 60 | beam |") == 1


def test_profile_script_prints_operator_tables(capsys):
    from bench.speed.profile import main

    main(["--device", "cpu", "--beam-items", "60", "--train-items", "60", "--users", "4", "--train-batch", "8", "--rows", "3"])
    out = capsys.readouterr().out
    assert out.count("### beam search") == 2 and "### training step" in out and out.count("Self CPU time total") == 3


def test_by_default_the_speed_run_decodes_as_a_run_does(monkeypatch):
    """"default" times the kernels SEATER.recommend picks when not told (math on CUDA): the path runs take."""
    import torch

    from bench.speed.retrieval import kernels
    from seater.model.seater import SEATER, decode_attention

    seen = []
    real = SEATER.recommend

    def spy(self, hist, *args, attention=None, **kw):
        seen.append(attention)
        return real(self, hist, *args, attention=attention, **kw)

    monkeypatch.setattr(SEATER, "recommend", spy)
    cfg = RetrievalSpeedConfig(sizes=(60,), k=4, beam=5, topk=5, beams=(5,), users=4, batch=4, train_batch=4, train_steps=1, d_model=16)
    result = run_retrieval_speed(cfg, log=lambda *_: None)
    assert set(seen) == {decode_attention(torch.device("cpu"))} == {"auto"}  # on CUDA: "math"
    assert {r["attention"] for r in result["rows"] if "attention" in r} == {"default"}
    assert kernels("default", "decode", torch.device("cuda")) == "math" and kernels("default", "train", torch.device("cuda")) == "auto"


def test_attentions_that_run_the_same_kernels_are_timed_once():
    cfg = RetrievalSpeedConfig(sizes=(60,), k=4, beam=5, topk=5, beams=(5,), users=4, batch=4, train_batch=4, train_steps=1,
                               d_model=16, attentions=("default", "auto", "math"))
    rows = run_retrieval_speed(cfg, log=lambda *_: None)["rows"]
    # on CPU "default" is torch's choice ("auto") for decoding and training alike: auto is not timed again
    assert [r["attention"] for r in rows if r["kind"] == "beam"] == ["default", "math"]
    assert [r["attention"] for r in rows if r["kind"] == "train"] == ["default", "math"]
