"""The error hierarchy shared by build time and query time.

Every message names the bad value and the fix; the CLI and the UI print `str(err)` and never a traceback.
"""


class AssistantError(Exception):
    """Base of every error a user may see."""


class CorpusError(AssistantError):
    """The corpus folder or a file in it cannot be used."""


class ModelLoadError(AssistantError):
    """The embedding model cannot be loaded or converted."""


class IndexMismatchError(AssistantError):
    """The index on disk was built from another corpus or configuration."""


class CorruptIndexError(AssistantError):
    """The index on disk is unreadable or inconsistent."""


class IndexBusyError(AssistantError):
    """Another build holds the index lock."""


class IndexWriteError(AssistantError):
    """The index folder cannot be written (read-only, full disk, permissions)."""
