"""Query-time errors, on top of the shared hierarchy in `index.errors`."""
from index.errors import (  # noqa: F401  (re-exported: users catch them from here)
    AssistantError,
    CorpusError,
    CorruptIndexError,
    IndexBusyError,
    IndexMismatchError,
    IndexWriteError,
    ModelLoadError,
)


class QueryError(AssistantError):
    """A question or a per-call option is not acceptable."""


class EmptyQueryError(QueryError):
    pass


class QueryTooLongError(QueryError):
    pass


class InvalidOptionError(QueryError):
    """top_k, include=, before/after out of range or of the wrong type."""


class UnknownSourceError(QueryError):
    """A filter names a source or article that is not in the index."""
