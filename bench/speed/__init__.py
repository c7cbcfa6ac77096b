"""Speed benchmarks behind `seater-bench speed ...`; each writes a table with its provenance to results/."""

from __future__ import annotations

from typing import Any, Callable


class ReportedRows(list):
    """A result's rows that hand the result so far to `on_rows` at every append, so the caller can
    write its table as it grows and a run killed mid-way keeps what it measured."""

    def __init__(self, head: dict[str, Any], on_rows: Callable[[dict[str, Any]], None] | None):
        super().__init__()
        self.head, self.on_rows = head, on_rows

    def append(self, row: dict[str, Any]) -> None:
        super().append(row)
        if self.on_rows is not None:
            self.on_rows(self.result())

    def result(self) -> dict[str, Any]:
        return {**self.head, "rows": list(self)}
