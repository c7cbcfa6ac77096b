"""A small explicit name -> factory registry, one per kind of component.

Each entry holds the factory and its default parameters, so `seater-bench list` can show
them and the harness can log exactly what ran. Unknown names raise `UnknownNameError`
listing the known ones (no silent fallback).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Any, Callable, Generic, Iterator, TypeVar

from seater.errors import ConfigError, UnknownNameError

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class Entry:
    name: str
    factory: Callable[..., Any]
    defaults: dict[str, Any] = field(default_factory=dict)
    doc: str = ""
    # parameters added after results existed, whose default reproduces the behaviour from before
    # they existed: left out of a result's identity while they hold that default (`identity_params`)
    added: tuple[str, ...] = ()
    # check(params) raises ConfigError on values out of range: what the factory itself checks before
    # any work, callable alone so that a suite can check every point while it loads (`check`)
    check: Callable[[dict[str, Any]], None] | None = None


_KINDS = {bool: "true or false", int: "an integer", float: "a number", str: "a string", list: "a list"}


def _int_kind(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _type_ok(default: Any, value: Any) -> bool:
    """Whether `value` is the same kind of value as `default` (ints pass for floats; None default: anything)."""
    if default is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, int):
        return isinstance(value, int)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


class Registry(Generic[F]):
    """Maps names to factories with their default keyword parameters."""

    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, Entry] = {}

    def register(
        self, name: str, defaults: dict[str, Any] | None = None, doc: str = "", added: tuple[str, ...] = (),
        check: Callable[[dict[str, Any]], None] | None = None,
    ) -> Callable[[F], F]:
        """Decorator: register `factory` under `name` with its default parameters.

        `added`: parameters introduced after results were recorded, whose defaults keep the old
        behaviour; `identity_params` leaves them out at their defaults so those results stay reusable.
        `check`: ``check(params)`` raises ConfigError on out-of-range values (see `Entry.check`).
        """
        unknown = sorted(set(added) - set(defaults or {}))
        if unknown:
            raise ValueError(f"{self.kind} {name!r}: added parameter(s) {', '.join(unknown)} have no default")

        def deco(factory: F) -> F:
            if name in self._entries:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            text = doc or (factory.__doc__ or "").strip().splitlines()[0:1]
            self._entries[name] = Entry(
                name, factory, dict(defaults or {}), text if isinstance(text, str) else "".join(text), tuple(added), check
            )
            return factory

        return deco

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except KeyError:
            known = ", ".join(sorted(self._entries)) or "(none registered: modules register on import; bench.registry.load_all() imports them all)"
            close = difflib.get_close_matches(str(name), list(self._entries), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise UnknownNameError(f"unknown {self.kind} {name!r}{hint}; known: {known}") from None

    def params(self, name: str, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
        """Defaults of `name` updated by `overrides`; an unknown key, or a value of another kind than its default, raises."""
        entry = self.get(name)
        overrides = dict(overrides or {})
        unknown = sorted(set(overrides) - set(entry.defaults))
        if unknown:
            raise ConfigError(
                f"unknown parameter(s) {', '.join(unknown)} for {self.kind} {name!r}; "
                f"known: {', '.join(sorted(entry.defaults)) or '(none)'}"
                + ("; the seed is set apart (--seed, or a suite's seeds)" if "seed" in unknown else "")
            )
        for key, value in overrides.items():
            default = entry.defaults[key]
            if _int_kind(default) and isinstance(value, float) and value.is_integer():
                # 2e3 (TOML and JSON read it as a float) means 2000, as in --sizes 2e4
                value = overrides[key] = int(value)
            if not _type_ok(default, value):
                want = next((w for t, w in _KINDS.items() if isinstance(default, t)), type(default).__name__)
                # one message here instead of a TypeError deep inside a builder or a model
                raise ConfigError(f"parameter {key} of {self.kind} {name!r} must be {want} like its default {default!r}, got {value!r}")
        return {**entry.defaults, **overrides}

    def check(self, name: str, params: dict[str, Any]) -> None:
        """`params` (complete, as from `params`) pass the entry's own range checks; a no-op without one."""
        entry = self.get(name)
        if entry.check is not None:
            entry.check(params)

    def check_variants(self, labels: list[str], params: dict[str, dict[str, Any]], listed_as: str) -> None:
        """Rows named NAME or NAME@LABEL (variants of one entry side by side), with overrides per row:
        each row listed once, a label after every @, a registered NAME, overrides only for listed
        rows and valid for their NAME (types and ranges, before any row is built). `listed_as` names the
        list in messages ("builders")."""
        if len(set(labels)) < len(labels):
            raise ConfigError(f"a name is listed twice in {','.join(labels)}; name variants NAME@LABEL")
        unknown = set(params) - set(labels)
        if unknown:
            raise ConfigError(f"--param for {', '.join(sorted(unknown))}, which is not among the {listed_as} {','.join(labels)}")
        for label in labels:
            name, at, tag = label.partition("@")
            if at and not tag:
                raise ConfigError(f"{self.kind} variant {label!r}: give a label after @, e.g. {name}@refined")
            if not name:
                raise ConfigError(f"{self.kind} variant {label!r}: give a name before @, e.g. greedy@{tag or 'refined'}")
            self.check(name, self.params(name, params.get(label)))  # unknown names, parameters and ranges raise

    def identity_params(self, name: str, params: dict[str, Any]) -> dict[str, Any]:
        """`params` as they identify a result: `added` parameters at their defaults left out."""
        entry = self.get(name)
        return {k: v for k, v in params.items() if not (k in entry.added and v == entry.defaults[k])}

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[Entry]:
        return iter(self._entries[n] for n in self.names())
