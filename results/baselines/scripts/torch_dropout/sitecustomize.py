"""Put torch's own dropout back for one run: ``PYTHONPATH=results/baselines/scripts/torch_dropout seater-bench run ...``.

Python imports this file at start-up (site), before any cell: `seater.dropout.Dropout` then draws its
masks with ``F.dropout`` (torch's per-element Bernoulli), as the dual encoders did before 7f3057b, instead
of `cpu_dropout`'s 16-bit slices. Same keep probability, another random stream: the
`beauty_bert4rec_dropout_rng` suite uses it to tell a code change from seed noise.
"""

import os

import torch.nn.functional as F

import seater.dropout

seater.dropout.Dropout.forward = lambda self, x: F.dropout(x, self.p, self.training, self.inplace)
os.environ["SEATER_BENCH_PATCH"] = "torch_dropout"  # recorded in every row's and file's provenance (bench.provenance)
print("[sitecustomize] seater.dropout.Dropout uses torch's F.dropout", flush=True)
