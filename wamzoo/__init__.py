"""wamzoo: a plugin-based zoo of World Action Models for robot manipulation.

>>> import wamzoo
>>> wamzoo.list_components("*video*")              # doctest: +SKIP
>>> policy = wamzoo.load("fast-wam/mw-easy-small")   # doctest: +SKIP
>>> chunk = policy.predict_action(observation)       # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["Batch", "WAMPolicy", "create", "list_components", "list_names", "load", "__version__"]


def list_names(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Registered names of every kind (components, recipes, pretrained policies, converters) as
    ``kind:name`` matching a shell-style pattern; see :mod:`wamzoo.registry` for the naming scheme."""
    from wamzoo.plugins import get_plugins

    return [f"{e.kind}:{e.name}" for e in get_plugins().registry.entries(pattern, kind)]


def list_components(pattern: str = "*", kind: str | None = None) -> list[str]:
    """Registered components as ``kind:name`` matching a shell-style pattern."""
    from wamzoo.plugins import get_plugins
    from wamzoo.registry import COMPONENT_KINDS

    return [f"{e.kind}:{e.name}" for e in get_plugins().registry.entries(pattern, kind or COMPONENT_KINDS)]


def create(kind: str, name: str, /, **kwargs: Any) -> Any:
    """Instantiate a registered component by kind and name."""
    from wamzoo.plugins import get_plugins

    return get_plugins().registry.create(kind, name, **kwargs)


def load(ref: str, device: str | None = None, dtype: str | None = None, **kwargs: Any):
    """A ready policy from a pretrained name, ``hf-hub:org/repo``, a local folder or a ``.ckpt`` file, on
    ``device`` (``auto``, ``cpu``, ``cuda``, ``mps``) at ``dtype`` (``float32``, ``bfloat16``, ``float16``)."""
    from wamzoo.loading import load_policy

    return load_policy(ref, device=device, dtype=dtype, **kwargs)


def __getattr__(name: str) -> Any:  # lazy heavy imports
    if name == "WAMPolicy":
        from wamzoo.policy import WAMPolicy

        return WAMPolicy
    if name == "Batch":
        from wamzoo.batch import Batch

        return Batch
    raise AttributeError(name)
