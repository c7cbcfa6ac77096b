"""seater: the library half of seater-bench.

Data loading and splits (`seater.data`), metrics (`seater.metrics`), identifier trees and
their builders (`seater.trees`), the SEATER model (`seater.model`), the shared training
loop (`seater.training`) and the retriever contract (`seater.retriever`).
Nothing here knows about MLflow, asv or the CLI.
"""

__version__ = "0.1.0"
