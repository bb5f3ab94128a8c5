"""Plugin loading: entry points of the group ``wamzoo``, an allow/block list, and a doctor report.

Environment variables:

- ``WAMZOO_PLUGINS``: comma-separated entry-point names to load (allow list); ``none`` loads no
  third-party plugin. Unset: load all installed plugins.
- ``WAMZOO_BLOCK_PLUGINS``: comma-separated entry-point names never to load.

A plugin that fails to import, raises inside a hook, or registers a name that is already taken
is recorded in :attr:`Plugins.problems` (shown by ``wamzoo doctor``); everything else it
registered before the failure is kept, and the other plugins are unaffected.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import threading
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pluggy
import yaml

from wamzoo import components, hookspecs
from wamzoo.registry import COMPONENT_KINDS, Pretrained, Registry, RegistryError

GROUP = "wamzoo"
CORE = "wamzoo"


@dataclass
class Problem:
    plugin: str
    what: str
    detail: str = ""


@dataclass
class PluginInfo:
    name: str
    module: str
    version: str = ""
    counts: dict[str, int] = field(default_factory=dict)


class Plugins:
    """The loaded plugins and everything they registered, all of it in one :class:`~wamzoo.registry.Registry`."""

    def __init__(self) -> None:
        self.pm = pluggy.PluginManager(GROUP)
        self.pm.add_hookspecs(hookspecs)
        self.registry = Registry()
        #: The registered recipe folders (plugin, folder): their files are also addressable by their
        #: path inside the folder (``base/tiny``); their named files are ``recipe`` entries.
        self.recipe_dirs: list[tuple[str, Path]] = []
        self.problems: list[Problem] = []
        self.info: dict[str, PluginInfo] = {}

    # -- loading -----------------------------------------------------------------------------
    def add(self, plugin: Any, name: str, version: str = "") -> None:
        """Register a plugin object (a module or an object with hookimpls) and run its hooks."""
        if self.pm.has_plugin(name):
            self.problems.append(Problem(name, "already loaded", "two plugins share this name"))
            return
        self.pm.register(plugin, name=name)
        self.info[name] = PluginInfo(name, getattr(plugin, "__name__", type(plugin).__name__), version)
        self._run_hooks(name)

    def load_entry_points(self) -> None:
        allow = _env_list("WAMZOO_PLUGINS")
        block = set(_env_list("WAMZOO_BLOCK_PLUGINS") or [])
        for ep in sorted(md.entry_points(group=GROUP), key=lambda e: e.name):
            if ep.name in block or (allow is not None and ep.name not in allow):
                continue
            version = ep.dist.version if getattr(ep, "dist", None) else ""
            try:
                module = ep.load()
            except Exception as exc:  # a broken plugin must not break the others
                self.problems.append(Problem(ep.name, f"failed to import {ep.value}: {exc!r}",
                                             traceback.format_exc(limit=3)))
                continue
            self.add(module, ep.name, version)

    def _run_hooks(self, name: str) -> None:
        plugin = self.pm.get_plugin(name)
        counts = self.info[name].counts

        def guarded(hook: str, register: Callable[..., None]) -> None:
            impl = getattr(plugin, hook, None)
            if impl is None:
                return
            try:
                impl(register=register)
            except Exception as exc:
                self.problems.append(Problem(name, f"hook {hook} raised {exc!r}", traceback.format_exc(limit=3)))

        def add(kind: str, cname: str, obj: Any, **extra: Any) -> None:
            try:
                self.registry.register(kind, cname, obj, plugin=name, **extra)
                counts[kind] = counts.get(kind, 0) + 1
            except RegistryError as exc:
                self.problems.append(Problem(name, str(exc)))

        def component(kind: str, cname: str, obj: Any, tiny: dict | None = None) -> None:
            if kind not in COMPONENT_KINDS:
                self.problems.append(Problem(name, f"register_components: {kind!r} is not a component kind"
                                                   f" ({', '.join(COMPONENT_KINDS)}); recipes, pretrained policies"
                                                   " and converters have their own hooks"))
                return
            add(kind, cname, obj, tiny=tiny)

        def recipes(path: str | os.PathLike) -> None:
            p = Path(path)
            if not p.is_dir():
                self.problems.append(Problem(name, f"recipe folder {p} does not exist"))
                return
            self.recipe_dirs.append((name, p))
            for file in sorted(p.rglob("*.yaml")):
                try:
                    rname, description = recipe_header(file)
                except ValueError as exc:
                    self.problems.append(Problem(name, str(exc)))
                    continue
                if rname:
                    add("recipe", rname, file, description=description)

        def pretrained(*specs: Pretrained) -> None:
            for spec in specs:
                if not isinstance(spec, Pretrained):
                    self.problems.append(Problem(name, f"register_pretrained takes wamzoo.registry.Pretrained"
                                                       f" specs, got {type(spec).__name__}"))
                    continue
                add("pretrained", spec.name, spec)

        def converter(cname: str, fn: Callable[..., Any] | str, recognise: Callable[..., Any] | str | None = None) -> None:
            add("converter", cname, fn, recognise=recognise)

        guarded("register_components", component)
        guarded("register_recipes", recipes)
        guarded("register_pretrained", pretrained)
        guarded("register_converters", converter)


def recipe_header(path: Path) -> tuple[str | None, str]:
    """The ``name`` (``None`` for a file that only serves as a default) and ``description`` of a recipe file."""
    try:
        data = yaml.load(path.read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValueError(f"recipe file {path} cannot be read: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        return None, ""
    name = data.get("name")
    return (str(name) if name else None), str(data.get("description") or "")


def _env_list(var: str) -> list[str] | None:
    value = os.environ.get(var)
    if value is None:
        return None
    value = value.strip()
    if value.lower() in ("", "none"):
        return []
    return [v.strip() for v in value.split(",") if v.strip()]


_lock = threading.Lock()
_plugins: Plugins | None = None


def get_plugins(reload: bool = False) -> Plugins:
    """The process-wide plugin state, loaded on first use (core components first)."""
    global _plugins
    with _lock:
        if _plugins is None or reload:
            plugins = Plugins()
            plugins.add(components, CORE, _core_version())
            plugins.load_entry_points()
            _plugins = plugins
        return _plugins


def reset() -> None:
    """Forget the loaded plugins; the next :func:`get_plugins` loads them again."""
    global _plugins
    with _lock:
        _plugins = None


def use_plugins(*extra: tuple[str, Any], entry_points: bool = True) -> Plugins:
    """Reset the plugin state with explicit plugins (for tests and embedding)."""
    global _plugins
    plugins = Plugins()
    plugins.add(components, CORE, _core_version())
    if entry_points:
        plugins.load_entry_points()
    for name, obj in extra:
        plugins.add(obj, name)
    with _lock:
        _plugins = plugins
    return plugins


def _core_version() -> str:
    try:
        return md.version("wamzoo")
    except md.PackageNotFoundError:
        return "dev"
