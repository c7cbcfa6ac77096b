"""The tracker contract the library logs through. The MLflow implementation lives in `bench/`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol


class Tracker(Protocol):
    def log_params(self, params: dict[str, Any]) -> None: ...

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None: ...

    def log_artifact(self, path: str | Path) -> None: ...

    def set_status(self, status: str) -> None:
        """One of RUNNING, FINISHED, FAILED."""
        ...


class NullTracker:
    """Tracker that records nothing; the default for library calls."""

    def log_params(self, params: dict[str, Any]) -> None:
        pass

    def log_metrics(self, metrics: dict[str, float], step: int | None = None) -> None:
        pass

    def log_artifact(self, path: str | Path) -> None:
        pass

    def set_status(self, status: str) -> None:
        pass
