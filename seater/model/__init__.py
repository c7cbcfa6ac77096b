"""The SEATER model: encoder-decoder over tree identifiers, its losses and constrained beam search.

`seater.model.retriever` registers the retriever ``seater`` (imported here so the registry is full).
"""

from seater.model.beam_search import beam_search
from seater.model.config import SEATERConfig
from seater.model.seater import SEATER
from seater.model.retriever import SEATERRetriever

__all__ = ["SEATER", "SEATERConfig", "SEATERRetriever", "beam_search"]
