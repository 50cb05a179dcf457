"""Every exception sbert raises on purpose, in one place.

Each derives from :class:`SbertError` and from the built-in type callers would expect
(``FileNotFoundError``, ``ValueError``...), so ``except ValueError`` keeps working. The CLI
turns these into one line on stderr and exit code 2; anything else is a bug and shows as one.
"""

from __future__ import annotations


class SbertError(Exception):
    """Base class: a user's request that cannot be done, with a message that says what to do."""


class ModelNotFoundError(SbertError, FileNotFoundError):
    """The model is neither on disk, nor bundled, nor reachable on the hub."""


class ModelFolderError(SbertError, ValueError):
    """A model folder is malformed or uses a module type sbert does not support."""


class InputFormatError(SbertError, ValueError):
    """A data file cannot be read as asked (bad column, malformed row...)."""


class DataError(InputFormatError):
    """A data file cannot be read: the message names the file and line and what is wrong."""


class MissingExtraError(SbertError, ImportError):
    """A feature needs an optional dependency that is not installed."""


class IndexFailure(SbertError, ValueError):
    """The index cannot do what was asked (wrong model, missing folder, duplicate id...)."""


class WorkerError(SbertError, RuntimeError):
    """A worker process failed; the message carries the worker's own error."""


class UsageError(SbertError, ValueError):
    """Settings that do not go together (a command-line or API user's mistake)."""


class TrainingDiverged(SbertError, ArithmeticError):
    """A training loss, gradient or weight stopped being finite (NaN or inf)."""


__all__ = [
    "DataError", "IndexFailure", "InputFormatError", "MissingExtraError", "ModelFolderError",
    "ModelNotFoundError", "SbertError", "TrainingDiverged", "UsageError", "WorkerError",
]
