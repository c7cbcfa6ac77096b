"""Paired t-test over test users between the cells of two runs with the same trees and seeds.

    python results/seater/paired_runs.py runs/sports_seater_init runs/sports_seater_builders

Kept so that the commands cited in results/ still run: it is now `seater-bench compare A B`
(bench/paired.py), which pairs cells by dataset / retriever / tree name and seed.
"""

import sys

from bench.cli import main

if __name__ == "__main__":
    sys.argv = ["seater-bench", "compare", *sys.argv[1:3]]
    main()
