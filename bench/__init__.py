"""The harness: registries, experiment configs, grid runner, tracking, leaderboards, CLI, asv benchmarks."""
