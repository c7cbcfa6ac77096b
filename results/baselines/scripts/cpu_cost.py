"""CPU-seconds per training epoch and per 1000 recommended users, measured with process_time
(independent of how many other processes share the cores), on Amazon Beauty, 1 thread."""
import json, sys, time
import numpy as np, torch
from pathlib import Path; ROOT = Path(__file__).resolve().parents[3]; sys.path.insert(0, str(ROOT))
torch.set_num_threads(1)
from seater.data.interactions import Interactions
from seater.data.splits import leave_one_out
from seater.retriever import RETRIEVERS
import baselines.sasrec, baselines.gru4rec, baselines.bert4rec  # noqa

ds = sys.argv[1] if len(sys.argv) > 1 else "amazon-beauty"
seqs = [np.array(l.split()[1:], dtype=np.int64) for l in open(ROOT.parent / "shared" / "data" / ds / "sequences.txt")]
n_items = int(max(s.max() for s in seqs))
inter = Interactions(seqs, n_items, np.arange(len(seqs)), np.arange(n_items + 1), name=ds)
out = {}
for name, extra in [("sasrec", {"max_len": 50}), ("sasrec", {"max_len": 50, "loss": "sampled"}), ("sasrec", {"max_len": 20}),
                    ("gru4rec", {"max_len": 20}), ("bert4rec", {"max_len": 50})]:
    split = leave_one_out(inter, max_history=extra["max_len"])
    m = RETRIEVERS.get(name).factory(device="cpu", seed=0, **RETRIEVERS.params(name, extra))
    # one epoch's batches, timed for the first 15 training steps only
    from seater.training import TrainConfig
    m.n_items_, m.device_ = n_items, torch.device("cpu")
    m.encoder_ = m.build_encoder(n_items); m.log_q_ = None
    data = {k: torch.from_numpy(v) for k, v in m.training_tensors(split).items()}
    n_rows = len(next(iter(data.values())))
    lengths = (next(iter(data.values())) > 0).sum(1)
    gen = torch.Generator().manual_seed(0)
    ep = m.epoch_tensors(data, gen)
    from baselines.dual_encoder import length_bucketed_order
    order = length_bucketed_order(lengths, 256, gen) if m.trim_padding else torch.randperm(n_rows, generator=gen)
    opt = torch.optim.AdamW(m.encoder_.parameters(), lr=1e-3)
    n_b = 15; rows = 0
    c0 = time.process_time()
    for i in range(n_b):
        idx = order[i * 256:(i + 1) * 256]
        b = {k: v[idx] for k, v in ep.items()}
        if m.trim_padding:
            f = int(lengths[idx].max()); b = {k: v[:, v.shape[1] - f:] for k, v in b.items()}
        loss = m.step_loss(b); opt.zero_grad(); loss.backward(); opt.step(); rows += len(idx)
    cpu_batch = (time.process_time() - c0) / n_b
    n_batches = (n_rows + 255) // 256
    m.encoder_.eval()
    c0 = time.process_time(); m.recommend(split.test.histories[:2048], 20); cpu_rec = time.process_time() - c0
    key = name + "/" + ",".join(f"{k}={v}" for k, v in extra.items())
    out[key] = {"cpu_s_per_epoch": cpu_batch * n_batches, "batches_per_epoch": n_batches,
                "windows_per_cpu_s": 256 / cpu_batch, "users_per_cpu_s": 2048 / cpu_rec}
    print(key, {k: round(v, 1) for k, v in out[key].items()}, flush=True)
json.dump(out, open(f"/tmp/de/results/cpu_cost_{ds}.json", "w"), indent=1)
