"""Retrievers other than SEATER: dual encoders (SASRec, GRU4Rec, BERT4Rec), TIGER, and trivial baselines.

Importing this package registers them in `seater.retriever.RETRIEVERS`.
"""
