"""One registry for everything wamzoo knows by name: components, recipes, pretrained policies, converters.

Plugins fill it through their hooks (:mod:`wamzoo.hookspecs`): ``register_components`` adds
components, ``register_recipes`` a folder whose named YAML files become ``recipe`` entries,
``register_pretrained`` :class:`Pretrained` specs and ``register_converters`` checkpoint converters.
Every lookup, wildcard listing and "did you mean" goes through :class:`Registry`::

    >>> import wamzoo
    >>> wamzoo.list_names("fast*", kind="pretrained")       # doctest: +SKIP
    ['pretrained:fast-wam.libero-2cam224', 'pretrained:fast-wam.mw-easy-small', ...]
    >>> wamzoo.create("scheduler", "flow-matching", shift=5.0)  # doctest: +SKIP

A component is a class (or factory) whose constructor arguments are its configuration
(the diffusers convention).

Naming scheme (timm-style: kind, ``name[.tag]``, wildcards)
----------------------------------------------------------

- An entry is addressed by ``(kind, name)``. ``kind`` is one of :data:`KINDS`: the component kinds
  (``world_model``, ``action_expert``, ``coupling``, ``scheduler``, ``codec``, ``data``), ``recipe``,
  ``pretrained`` and ``converter``. The kind disambiguates: ``fast-wam`` is a recipe,
  ``fast-wam.video`` a world model, ``fast-wam.mw-easy-small`` a pretrained policy,
  ``fast-wam.release`` a converter. Where the kind is not implied, write it first:
  ``recipe:fast-wam``, ``world_model:fast-wam.video``.
- A name is ``family`` or ``family.tag``. The family is the plugin's name (``fast-wam``, which is
  also its main recipe) or a core name (``mot``, ``dit``, ``tiny-mot``); the tag says what within
  the family: a component's role (``fast-wam.video``), a converter's input format
  (``fast-wam.release``), a pretrained policy's weights (``fast-wam.mw-easy-small``: the
  ``fast-wam`` recipe trained on mw-easy, as timm's ``resnet50.a1_in1k`` is ``resnet50`` trained one
  way). Recipes are families and their variants (``fast-wam-joint``, ``fast-wam-joint-tiny``).
  Names use letters, digits, ``-``, ``_`` and ``.``; a plugin's names start with its family.
- A ``/`` reads as a ``.``: ``fast-wam/mw-easy-small`` is ``fast-wam.mw-easy-small`` (the spelling of
  older cards and pages). A Hugging Face Hub repository is never a registry name; it is written
  ``hf-hub:org/repo[@revision]``.
- Patterns are shell-style wildcards over names (``fast*``, ``*.mw-easy-small``), optionally
  ``kind:pattern``.
- An unknown name raises :class:`UnknownNameError` naming the closest names of its kind.
"""

from __future__ import annotations

import ast
import dataclasses
import difflib
import fnmatch
import functools
import importlib
import importlib.util
import inspect
import re
import textwrap
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from wamzoo.errors import RegistryError

#: The kinds a component can have (classes or factories built with constructor arguments). The first
#: four are the interfaces of a WAM.
COMPONENT_KINDS: tuple[str, ...] = ("world_model", "action_expert", "coupling", "scheduler", "codec", "data")
#: Every kind of name: the components', then recipes (YAML files), pretrained policies
#: (:class:`Pretrained`) and checkpoint converters (functions).
KINDS: tuple[str, ...] = COMPONENT_KINDS + ("recipe", "pretrained", "converter")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def normalize(name: str) -> str:
    """The canonical spelling of a name: a ``/`` reads as a ``.`` (``fast-wam/mw-easy-small``)."""
    return name.replace("/", ".")


def split_kind(ref: str) -> tuple[str | None, str]:
    """``("recipe", "fast-wam")`` for ``"recipe:fast-wam"``; ``(None, ref)`` when ``ref`` names no kind."""
    kind, sep, name = ref.partition(":")
    return (kind, name) if sep and kind in KINDS else (None, ref)


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


#: The files of the native format (:mod:`wamzoo.hub`): what a :class:`Pretrained` fetches by default.
NATIVE_FILES: tuple[str, ...] = ("config.json", "model.safetensors", "stats.json")


@dataclass
class Pretrained:
    """A pretrained policy, registered by name under kind ``pretrained``.

    ``repo_id`` is a Hub repository (or ``local:<folder>`` for files shipped with a plugin);
    ``converter`` names a registered converter for upstream formats (``None``: native format);
    ``options`` are passed to the converter.
    """

    name: str
    repo_id: str
    files: list[str] = field(default_factory=lambda: list(NATIVE_FILES))
    revision: str | None = None
    converter: str | None = None
    description: str = ""
    options: dict[str, Any] = field(default_factory=dict)


@dataclass
class Entry:
    """One registered name.

    ``target`` is what the name stands for: for a component the class/factory itself or a lazy
    reference ``"package.module:Attribute"`` (imported on first use, so that listing stays fast);
    for a recipe its YAML file; for a pretrained policy its :class:`Pretrained`; for a converter the
    function or a lazy reference to it.
    """

    kind: str
    name: str
    target: Callable[..., Any] | str
    plugin: str = "?"
    #: Constructor arguments of a tiny configuration (used by the conformance tests).
    tiny: dict[str, Any] = field(default_factory=dict)
    #: One paragraph for listings (a recipe's or a pretrained policy's ``description``); empty: the docstring.
    description: str = ""
    #: A converter's folder recogniser (or a lazy reference to it): ``recognise(folder)`` returns
    #: ``(files, options)`` for the converter when ``folder`` holds a checkpoint of its layout, else ``None``.
    recognise: Callable[..., Any] | str | None = None

    @property
    def obj(self) -> Callable[..., Any]:
        self.target = import_target(self.target)
        return self.target

    @property
    def doc(self) -> str:
        if self.description or self.kind in ("recipe", "pretrained"):
            return self.description
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


_WHAT = {"pretrained": "pretrained policy", "converter": "checkpoint converter"}


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise RegistryError(f"unknown kind {kind!r}; kinds are {', '.join(KINDS)}")


class Registry:
    """Every registered name, indexed by (kind, name); names are stored in their canonical spelling."""

    def __init__(self) -> None:
        self._entries: dict[tuple[str, str], Entry] = {}

    def register(self, kind: str, name: str, obj: Any, *, plugin: str = "?", tiny: dict[str, Any] | None = None,
                 description: str = "", recognise: Callable[..., Any] | str | None = None) -> Entry:
        """Add ``name`` of ``kind`` standing for ``obj`` (see :class:`Entry` for what ``obj`` is per kind)."""
        _check_kind(kind)
        name = normalize(str(name))
        if not _NAME.fullmatch(name):
            raise RegistryError(f"{kind} name {name!r} from plugin {plugin!r} is not a valid name: use letters,"
                                " digits, '-', '_' and '.' (family.tag, e.g. 'my-wam.video'), starting with a"
                                " letter or digit")
        key = (kind, name)
        if key in self._entries:
            old = self._entries[key]
            raise DuplicateNameError(
                f"{kind} {name!r} from plugin {plugin!r} clashes with the one from plugin {old.plugin!r};"
                " rename one of them (a plugin's names start with its own name)")
        if isinstance(obj, Pretrained):  # the spec carries its entry's name and description
            obj = dataclasses.replace(obj, name=name)
            description = description or obj.description
        entry = Entry(kind, name, obj, plugin, dict(tiny or {}), description, recognise)
        self._entries[key] = entry
        return entry

    def get(self, kind: str, name: str, hint: str = "") -> Entry:
        """The entry of ``name`` (any spelling) of ``kind``; an unknown name raises :class:`UnknownNameError`
        naming the closest names of that kind (``hint`` is appended to its message)."""
        _check_kind(kind)
        try:
            return self._entries[(kind, normalize(name))]
        except KeyError:
            raise unknown(_WHAT.get(kind, kind.replace("_", " ")), name, self.names(kind), hint=hint) from None

    def find(self, ref: str) -> list[Entry]:
        """The entries of every kind called ``ref`` (``kind:name`` restricts the kind)."""
        kind, name = split_kind(ref)
        name = normalize(name)
        return [self._entries[(k, name)] for k in KINDS if kind in (None, k) and (k, name) in self._entries]

    def names(self, kind: str | None = None) -> list[str]:
        return sorted(n for (k, n) in self._entries if kind is None or k == kind)

    def entries(self, pattern: str = "*", kind: str | typing.Iterable[str] | None = None) -> list[Entry]:
        """Entries, sorted by kind then name, whose name matches the shell-style ``pattern`` (``kind:pattern``
        also restricts the kind); ``kind`` is one kind or several."""
        pkind, pattern = split_kind(pattern)
        pattern = normalize(pattern)
        kinds = {kind} if isinstance(kind, str) else set(kind) if kind is not None else set(KINDS)
        for k in kinds:
            _check_kind(k)
        if pkind is not None:
            kinds &= {pkind}
        out = [e for (k, n), e in self._entries.items() if k in kinds
               and (fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(f"{k}:{n}", pattern))]
        return sorted(out, key=lambda e: (KINDS.index(e.kind), e.name))

    def create(self, kind: str, name: str, /, **kwargs: Any) -> Any:
        """Instantiate a component; arguments are checked against its signature first."""
        if kind not in COMPONENT_KINDS:
            raise RegistryError(f"{kind} {name!r} is not a component; only {', '.join(COMPONENT_KINDS)} are created"
                                " from arguments")
        entry = self.get(kind, name)
        check_arguments(entry, kwargs)
        return entry.obj(**kwargs)

    def __contains__(self, key: tuple[str, str]) -> bool:
        kind, name = key
        return (kind, normalize(name)) in self._entries

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
