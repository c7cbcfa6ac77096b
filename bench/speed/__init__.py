"""Speed benchmarks behind `seater-bench speed ...`; each writes a table with its provenance to results/."""
