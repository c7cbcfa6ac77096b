"""Errors a user can act on. The CLI prints their message alone, never a traceback."""


class SeaterError(Exception):
    """Base class for every error caused by bad input or configuration."""


class DataError(SeaterError):
    """A dataset file is missing, empty or malformed (the message names file and line)."""


class ConfigError(SeaterError):
    """An experiment config or parameter is invalid (the message names the key)."""


class UnknownNameError(SeaterError, KeyError):
    """A registry lookup used a name that is not registered (the message lists the known ones)."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class TrackingError(SeaterError):
    """An MLflow server cannot be reached, or refused a row (the results file keeps every row)."""


class TreeBuildError(SeaterError):
    """A tree builder failed or produced an invalid tree."""
