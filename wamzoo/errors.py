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
