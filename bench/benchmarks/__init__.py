"""asv benchmarks (only benchmarks live here: asv imports every module)."""
