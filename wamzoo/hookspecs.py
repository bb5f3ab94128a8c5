"""The whole plugin API of wamzoo.

A plugin is a module (or object) with functions decorated by :data:`hookimpl`, published
under the entry-point group ``wamzoo``::

    # pyproject.toml of the plugin
    [project.entry-points.wamzoo]
    my_wam = "my_wam.plugin"

Every hook receives a ``register`` callback; call it once per thing you provide. Everything lands in
one registry (:mod:`wamzoo.registry`), under one naming scheme: ``family.tag`` names that start with
the plugin's name (``my-wam.video``, ``my-wam.release``, ``my-wam.mw-easy-small``; recipes ``my-wam``,
``my-wam-tiny``), told apart by their kind. A plugin that raises, or registers a name another plugin
already took, is reported by ``wamzoo doctor`` and never breaks the other plugins.
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("wamzoo")
hookimpl = pluggy.HookimplMarker("wamzoo")


@hookspec
def register_components(register):
    """Register components: ``register(kind, name, cls, tiny={...})``.

    ``kind`` is one of :data:`wamzoo.registry.COMPONENT_KINDS`. ``cls`` is the class (or factory) or a
    lazy reference ``"package.module:Class"``. ``tiny`` gives constructor arguments of a tiny
    configuration; the conformance tests build every component with it.
    """


@hookspec
def register_recipes(register):
    """Register a folder of recipe YAML files: ``register(path)``.

    Each file with a top-level ``name:`` becomes a ``recipe`` entry of that name (``wamzoo train
    fast-wam``), its ``description:`` the listing's summary; every file is also addressable by its
    path inside the folder (``base/tiny``).
    """


@hookspec
def register_pretrained(register):
    """Register pretrained policies by name: ``register(wamzoo.registry.Pretrained(...), ...)``.

    Import :class:`~wamzoo.registry.Pretrained` from :mod:`wamzoo.registry` (torch-free), so that
    loading the plugin stays fast.
    """


@hookspec
def register_converters(register):
    """Register checkpoint converters: ``register(name, fn, recognise=None)``.

    ``fn(files: dict[str, Path], **options) -> wamzoo.WAMPolicy`` turns the files of a released
    checkpoint into a policy; pretrained names refer to converters by ``name``. ``recognise(folder)``
    returns ``(files, options)`` for ``fn`` when a local folder holds a checkpoint of the converter's
    layout (``None`` otherwise), so ``wamzoo.load(folder)`` converts it; its docstring's first line
    describes the layout in the error listing the known ones. Both may be lazy references
    ``"package.module:function"``, imported on first use (so listing names stays fast).
    """
