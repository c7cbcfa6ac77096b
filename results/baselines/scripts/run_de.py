"""Throwaway runner: train one dual encoder on a real dataset (leave-one-out), eval valid+test."""
import argparse, json, os, sys, time
import numpy as np, torch
from pathlib import Path; ROOT = Path(__file__).resolve().parents[3]; sys.path.insert(0, str(ROOT))
from seater.data.interactions import Interactions
from seater.data.splits import leave_one_out
from seater.metrics import evaluate
from seater.retriever import RETRIEVERS
import baselines.sasrec, baselines.gru4rec, baselines.bert4rec  # noqa

p = argparse.ArgumentParser()
p.add_argument("--dataset", default="amazon-beauty")
p.add_argument("--model", default="sasrec")
p.add_argument("--seed", type=int, default=0)
p.add_argument("--tag", required=True)
p.add_argument("--threads", type=int, default=1)
p.add_argument("--emb-out", default=None)
p.add_argument("--param", action="append", default=[], help="key=json")
a = p.parse_args()
torch.set_num_threads(a.threads)
params = {k: json.loads(v) for k, v in (s.split("=", 1) for s in a.param)}
seqs, users = [], []
for line in open(ROOT.parent / "shared" / "data" / a.dataset / "sequences.txt"):
    t = line.split()
    users.append(int(t[0])); seqs.append(np.array(t[1:], dtype=np.int64))
n_items = int(max(s.max() for s in seqs))
inter = Interactions(seqs, n_items, np.array(users), np.arange(n_items + 1), name=a.dataset)
max_hist = int(params.get("max_len", 20))
split = leave_one_out(inter, max_history=max_hist)
params.setdefault("checkpoint_dir", f"/tmp/de/ckpt/{a.tag}")
params.setdefault("progress", False)
params = RETRIEVERS.params(a.model, params)

class PrintTracker:
    def log_params(self, p): pass
    def log_artifact(self, p): pass
    def set_status(self, s): pass
    def log_metrics(self, m, step=None):
        print(step, {k: round(v, 4) for k, v in m.items()}, flush=True)

model = RETRIEVERS.get(a.model).factory(device="cpu", seed=a.seed, **params)
t0 = time.time()
model.fit(split, tracker=PrintTracker())
fit_s = time.time() - t0
ks = [5, 10, 20]
res = {"tag": a.tag, "dataset": a.dataset, "model": a.model, "seed": a.seed, "params": params, "fit_info": model.fit_info_}
for name, es in (("valid", split.valid), ("test", split.test)):
    t = time.time(); pred = model.recommend(es.histories, 20); dt = time.time() - t
    res[name] = evaluate(pred, es.truth, ks); res[f"{name}_users_per_s"] = len(es) / dt
res["threads"] = a.threads
print(json.dumps(res, indent=1), flush=True)
os.makedirs("/tmp/de/results", exist_ok=True)
json.dump(res, open(f"/tmp/de/results/{a.tag}.json", "w"), indent=1)
if a.emb_out:
    np.save(a.emb_out, model.item_embeddings(), allow_pickle=False)
