"""Components by kind and name.

Plugins fill the registry through the ``register_components`` hook (see :mod:`wamzoo.hookspecs`);
recipes then name components and pass their constructor arguments::

    >>> import wamzoo
    >>> wamzoo.list_components("fast*")                      # doctest: +SKIP
    ['action_expert:fast-wam.action', 'world_model:fast-wam.video']
    >>> wamzoo.create("scheduler", "flow-matching", shift=5.0)  # doctest: +SKIP

A component is a class (or factory) whose constructor arguments are its configuration
(the diffusers convention). An unknown name raises an error that lists the closest names.
"""

from __future__ import annotations

import ast
import difflib
import fnmatch
import functools
import importlib
import importlib.util
import inspect
import textwrap
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from wamzoo.errors import RegistryError

#: The kinds a component can have. The first four are the interfaces of a WAM.
KINDS: tuple[str, ...] = ("world_model", "action_expert", "coupling", "scheduler", "codec", "data")


class UnknownNameError(RegistryError, KeyError):
    """A name that is not registered; the message lists the closest names."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class DuplicateNameError(RegistryError):
    """Two plugins registered the same (kind, name)."""


class ConfigError(RegistryError, TypeError):
    """Constructor arguments that do not fit a component's signature."""


def close_matches(name: str, candidates: typing.Iterable[str], n: int = 5) -> list[str]:
    """The registered names closest to ``name`` (for error messages)."""
    candidates = list(candidates)
    found = difflib.get_close_matches(name, candidates, n=n, cutoff=0.4)
    found += [c for c in candidates if name and name.lower() in c.lower() and c not in found]
    return found[:n]


def unknown(what: str, name: str, candidates: typing.Iterable[str], hint: str = "") -> UnknownNameError:
    """Build the error for an unknown ``name`` among ``candidates``."""
    candidates = sorted(candidates)
    near = close_matches(name, candidates)
    msg = f"unknown {what} {name!r}."
    if near:
        msg += " Did you mean: " + ", ".join(near) + "?"
    elif candidates:
        msg += f" Known: {', '.join(candidates[:20])}{' ...' if len(candidates) > 20 else ''}."
    else:
        msg += " Nothing of that kind is registered; is the plugin that provides it installed?"
    if hint:
        msg += " " + hint
    return UnknownNameError(msg)


def import_target(target: Callable[..., Any] | str) -> Callable[..., Any]:
    """``target`` itself, or the object a lazy reference ``"package.module:Attribute"`` names (imported now)."""
    if not isinstance(target, str):
        return target
    module, _, attr = target.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass
class Entry:
    """One registered component.

    ``target`` is the class/factory itself or a lazy reference ``"package.module:Attribute"``,
    imported on first use so that listing components stays fast.
    """

    kind: str
    name: str
    target: Callable[..., Any] | str
    plugin: str = "?"
    #: Constructor arguments of a tiny configuration (used by the conformance tests).
    tiny: dict[str, Any] = field(default_factory=dict)

    @property
    def obj(self) -> Callable[..., Any]:
        self.target = import_target(self.target)
        return self.target

    @property
    def doc(self) -> str:
        if isinstance(self.target, str):
            return _static_doc(self.target)
        return inspect.getdoc(self.target) or ""

    @property
    def summary(self) -> str:
        return self.doc.split("\n\n")[0].replace("\n", " ")

    def parameters(self) -> dict[str, inspect.Parameter]:
        """The constructor's parameters (its configuration), inherited ones included.

        A class whose ``__init__`` takes ``**kwargs`` and hands them to ``super().__init__(...)``
        accepts the parent's parameters too (keyword-only, after its own), followed up the MRO,
        less those it passes to the parent itself; ``**kwargs`` that go anywhere else accept anything.
        """
        return dict(constructor_parameters(self.obj))


def constructor_parameters(obj: Callable[..., Any]) -> dict[str, inspect.Parameter]:
    """``obj``'s constructor parameters, following ``**kwargs`` forwarded to the parent (:meth:`Entry.parameters`)."""
    if not inspect.isclass(obj):
        return {k: p for k, p in inspect.signature(obj).parameters.items() if k != "self"}
    return dict(_class_parameters(obj))


@functools.lru_cache(maxsize=None)
def _class_parameters(cls: type) -> tuple[tuple[str, inspect.Parameter], ...]:
    params = {k: p for k, p in inspect.signature(cls).parameters.items() if k != "self"}
    var = next((k for k, p in params.items() if p.kind is p.VAR_KEYWORD), None)
    mro = cls.__mro__
    owner = next((c for c in mro if "__init__" in vars(c)), object)
    if var is None or owner is object:
        return tuple(params.items())
    forwarded = _forwarded_to_super(owner.__init__, var)
    parent = next((c for c in mro[mro.index(owner) + 1:] if "__init__" in vars(c)), object)
    if forwarded is None or parent is object:
        return tuple(params.items())
    positional, keywords = forwarded
    inherited = dict(_class_parameters(parent))
    passed = [k for k, p in inherited.items() if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)][:positional]
    del params[var]
    for k, p in inherited.items():
        if k in params or k in keywords or k in passed or p.kind in (p.VAR_POSITIONAL, p.POSITIONAL_ONLY):
            continue
        params[k] = p if p.kind is p.VAR_KEYWORD else p.replace(kind=p.KEYWORD_ONLY)
    return tuple(params.items())


def _forwarded_to_super(init: Callable[..., Any], var: str) -> tuple[int, set[str]] | None:
    """(positional count, keyword names) that ``init`` passes to ``super().__init__(..., **var)``; ``None`` if it doesn't."""
    try:
        tree = ast.parse(textwrap.dedent(inspect.getsource(init)))
    except (OSError, TypeError, SyntaxError):
        return None
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "__init__"
                and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
                and node.func.value.func.id == "super"
                and any(kw.arg is None and isinstance(kw.value, ast.Name) and kw.value.id == var
                        for kw in node.keywords)):
            starred = [i for i, a in enumerate(node.args) if isinstance(a, ast.Starred)]
            return (starred[0] if starred else len(node.args)), {kw.arg for kw in node.keywords if kw.arg}
    return None


class Registry:
    """A table of components indexed by (kind, name)."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Entry] = {}

    def register(self, kind: str, name: str, obj: Callable[..., Any] | str, *, plugin: str = "?",
                 tiny: dict[str, Any] | None = None) -> Entry:
        if kind not in KINDS:
            raise RegistryError(f"unknown component kind {kind!r}; kinds are {', '.join(KINDS)}")
        key = (kind, name)
        if key in self._entries:
            old = self._entries[key]
            raise DuplicateNameError(
                f"{kind} {name!r} from plugin {plugin!r} clashes with the one from plugin {old.plugin!r};"
                " rename one of them (names are usually prefixed with the plugin's name)")
        entry = Entry(kind, name, obj, plugin, dict(tiny or {}))
        self._entries[key] = entry
        return entry

    def get(self, kind: str, name: str) -> Entry:
        if kind not in KINDS:
            raise RegistryError(f"unknown component kind {kind!r}; kinds are {', '.join(KINDS)}")
        try:
            return self._entries[(kind, name)]
        except KeyError:
            raise unknown(kind.replace("_", " "), name, self.names(kind)) from None

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for (k, n) in self._entries if kind is None or k == kind)

    def entries(self, pattern: str = "*", kind: str | None = None) -> list[Entry]:
        """Entries whose name (or ``kind:name``) matches the shell-style ``pattern``."""
        out = []
        for (k, n), e in sorted(self._entries.items()):
            if kind is not None and k != kind:
                continue
            if fnmatch.fnmatch(n, pattern) or fnmatch.fnmatch(f"{k}:{n}", pattern):
                out.append(e)
        return out

    def create(self, kind: str, name: str, /, **kwargs: Any) -> Any:
        """Instantiate a component; arguments are checked against its signature first."""
        entry = self.get(kind, name)
        check_arguments(entry, kwargs)
        return entry.obj(**kwargs)

    def __contains__(self, key: tuple[str, str]) -> bool:
        return key in self._entries

    def __len__(self) -> int:
        return len(self._entries)


def _static_doc(ref: str) -> str:
    """Docstring of ``module:Attr`` read from source without importing the module."""
    module, _, attr = ref.partition(":")
    try:
        spec = importlib.util.find_spec(module)
        tree = ast.parse(Path(spec.origin).read_text())
    except Exception:
        return ""
    for node in tree.body:
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)) and node.name == attr:
            return inspect.cleandoc(ast.get_docstring(node) or "")
    return ""


def _type_ok(value: Any, annotation: Any) -> bool:
    """Loose check of ``value`` against a simple annotation (int/float/bool/str, unions, lists)."""
    if annotation in (inspect.Parameter.empty, Any) or isinstance(annotation, str):
        return True
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", typing.Union)):
        return any(_type_ok(value, a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if origin in (list, tuple, typing.Sequence) or annotation in (list, tuple):
        return isinstance(value, (list, tuple)) or hasattr(value, "__iter__") and not isinstance(value, (str, dict))
    if origin is dict or annotation is dict:
        return isinstance(value, dict) or hasattr(value, "keys")
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    return True


def check_arguments(entry: Entry, kwargs: dict[str, Any], where: str = "") -> None:
    """Raise :class:`ConfigError` naming the key if ``kwargs`` do not fit ``entry``'s constructor."""
    params = entry.parameters()
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    prefix = f"{where}: " if where else ""
    for key, value in kwargs.items():
        if key not in params:
            if takes_any:
                continue
            near = close_matches(key, params)
            raise ConfigError(
                f"{prefix}unknown argument {key!r} for {entry.kind} {entry.name!r}."
                + (f" Did you mean: {', '.join(near)}?" if near else "")
                + f" Valid arguments: {', '.join(params) or '(none)'}.")
        hints = _hints(entry.obj)
        ann = hints.get(key, params[key].annotation)
        if not _type_ok(value, ann):
            raise ConfigError(f"{prefix}argument {key!r} of {entry.kind} {entry.name!r} expects {_fmt(ann)},"
                              f" got {value!r} ({type(value).__name__})")
    missing = [k for k, p in params.items() if p.default is inspect.Parameter.empty
               and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and k not in kwargs]
    if missing:
        raise ConfigError(f"{prefix}{entry.kind} {entry.name!r} needs argument(s) {', '.join(missing)}")


def _hints(obj: Any) -> dict[str, Any]:
    """Resolved annotations of ``obj``'s constructor; a class's include those of its parents' (inherited arguments)."""
    targets = [c.__init__ for c in reversed(obj.__mro__) if "__init__" in vars(c)] if inspect.isclass(obj) else [obj]
    hints: dict[str, Any] = {}
    for target in targets:
        try:
            hints.update(typing.get_type_hints(target))
        except Exception:  # forward references that cannot be resolved: fall back to no check
            pass
    return hints


def _fmt(annotation: Any) -> str:
    return getattr(annotation, "__name__", None) or str(annotation).replace("typing.", "")
