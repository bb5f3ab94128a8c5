"""Error types of wamzoo (torch-free, so the CLI can catch them cheaply).

Every error a user can cause derives from :class:`WamzooError`; its message names what is wrong
and how to fix it. The CLI prints it without a traceback.
"""


class WamzooError(Exception):
    """Base class of user-facing errors."""


class BatchError(WamzooError, ValueError):
    """A batch that breaks the contract; the message names the field and the expected shape."""


class RecipeError(WamzooError, ValueError):
    """A recipe that cannot be composed or validated; the message names file and key."""


class LoadError(WamzooError, RuntimeError):
    """A policy that cannot be loaded as asked; the message says what is wrong and how to fix it."""


class RegistryError(WamzooError):
    """Base class of registry errors."""


class DataError(WamzooError, ValueError):
    """A dataset, episode or statistics file that cannot be used; the message names it and how to remake it."""


class StatsError(DataError):
    """Normalisation statistics missing for a quantity the policy normalises (``detail`` says which)."""

    def __init__(self, message: str, detail: str):
        super().__init__(message)
        self.detail = detail


class OutputError(WamzooError):
    """An output that cannot be written, or whose writing would lose files; the message names the path and the fix."""


class UsageError(WamzooError, ValueError):
    """An argument outside its range; the message names the argument and what it accepts."""


class Interrupted(WamzooError):
    """Stopped by Ctrl-C; the message says what was kept and how to resume."""
