"""Evaluate the best-validation weights stored in a train_loop checkpoint (for runs cut by the deadline)."""
import argparse, json, sys, time
import numpy as np, torch
from pathlib import Path; ROOT = Path(__file__).resolve().parents[3]; sys.path.insert(0, str(ROOT))
from seater.data.interactions import Interactions
from seater.data.splits import leave_one_out
from seater.metrics import evaluate
from seater.retriever import RETRIEVERS
from seater.training import load_checkpoint
import baselines.sasrec, baselines.gru4rec, baselines.bert4rec  # noqa

p = argparse.ArgumentParser()
p.add_argument("--dataset", default="amazon-beauty"); p.add_argument("--model", default="sasrec")
p.add_argument("--seed", type=int, default=0); p.add_argument("--tag", required=True)
p.add_argument("--emb-out", default=None); p.add_argument("--emb-only", action="store_true"); p.add_argument("--param", action="append", default=[])
a = p.parse_args()
torch.set_num_threads(1)
params = {k: json.loads(v) for k, v in (s.split("=", 1) for s in a.param)}
seqs, users = [], []
for line in open(ROOT.parent / "shared" / "data" / a.dataset / "sequences.txt"):
    t = line.split(); users.append(int(t[0])); seqs.append(np.array(t[1:], dtype=np.int64))
n_items = int(max(s.max() for s in seqs))
inter = Interactions(seqs, n_items, np.array(users), np.arange(n_items + 1), name=a.dataset)
split = leave_one_out(inter, max_history=int(params.get("max_len", 20)))
params = RETRIEVERS.params(a.model, params)
model = RETRIEVERS.get(a.model).factory(device="cpu", seed=a.seed, **params)
ck = load_checkpoint(f"/tmp/de/ckpt/{a.tag}/last.pt")
model.n_items_, model.device_ = n_items, torch.device("cpu")
model.encoder_ = model.build_encoder(n_items)
model.encoder_.load_state_dict(ck["best_model"]); model.encoder_.eval()
hist = ck["history"]
if a.emb_only:
    np.save(a.emb_out, model.item_embeddings(), allow_pickle=False); print("saved", a.emb_out, "best_epoch", ck["best_epoch"]); sys.exit(0)
res = {"tag": a.tag, "dataset": a.dataset, "model": a.model, "seed": a.seed, "params": params,
       "epochs_run": len(hist), "best_epoch": ck["best_epoch"], "finished_by_early_stopping": ck["finished"],
       "epoch_s_mean": float(np.mean([h["time/epoch_s"] for h in hist])),
       "valid_curve": [round(h["valid/ndcg@10"], 4) for h in hist], "best_valid_5000": ck["best_metrics"]}
for name, es in (("test", split.test),):
    t = time.time(); pred = model.recommend(es.histories, 20); dt = time.time() - t
    res[name] = evaluate(pred, es.truth, [5, 10, 20]); res[f"{name}_users_per_s"] = len(es) / dt
print(json.dumps(res, indent=1))
json.dump(res, open(f"/tmp/de/results/{a.tag}.ckpt.json", "w"), indent=1)
if a.emb_out:
    print("saved", a.emb_out)
    np.save(a.emb_out, model.item_embeddings(), allow_pickle=False)
