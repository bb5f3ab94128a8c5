"""Recipes: OmegaConf YAML that names components and their arguments.

A recipe composes other files through ``defaults`` (paths relative to the file, or registered
recipe names), merged in order and then overridden by the file itself and by command-line
dot-lists (``trainer.max_steps=100``)::

    defaults: [../base/cpu.yaml]
    name: fast-wam
    policy:
      world_model: {name: fast-wam.video, dim: 256}
      ...
    trainer: {max_steps: 3000}

Layers merge key by key: a default, then the next default, then the file, then the overrides;
a later layer's value wins and mappings merge recursively (lists are replaced whole).

Replacing a component. When a later layer names another component in a named section
(``policy.<part>.name`` or ``data.name``), the arguments the earlier layers gave that section stay
if the new component's constructor accepts them (its parameters, inherited ones included: see
:meth:`wamzoo.registry.Entry.parameters`) and are dropped if not; each drop is reported in
:attr:`Recipe.notes` (``wamzoo recipe show`` prints them). So a plugin recipe can compose a shared
size and swap in its own component: ``{name: fast-wam.video}`` over ``{name: dit.video, dim: 128}``
keeps ``dim``. Arguments the replacing layer gives itself are never dropped: an unknown one is an
error. Valid keys: ``policy.<part>`` and ``data`` take ``name`` and the named component's
constructor arguments; ``policy`` also takes ``context``, ``normalize`` and ``loss_weights``;
``trainer`` and ``eval`` take the fields of :class:`TrainerSpec` and :class:`EvalSpec`. Every error
names the file and the key.
"""

from __future__ import annotations

import dataclasses
import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml
from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from wamzoo.composition import ROLES
from wamzoo.composition import check as check_composition
from wamzoo.data.info import INJECTED
from wamzoo.errors import RecipeError
from wamzoo.plugins import get_plugins
from wamzoo.registry import ConfigError, check_arguments, unknown

POLICY_PARTS = ("world_model", "action_expert", "coupling", "scheduler", "codec")


#: What a training's learning-rate cosine decays over (:attr:`TrainerSpec.lr_decay`).
LR_DECAYS = ("steps", "budget")


@dataclass
class TrainerSpec:
    """Training loop settings (Lightning Trainer + optimiser)."""

    max_steps: int = 1000
    max_minutes: float | None = None
    batch_size: int = 32
    lr: float = 1e-4
    weight_decay: float = 0.01
    betas: list[float] = field(default_factory=lambda: [0.9, 0.95])
    warmup_steps: int = 100
    #: What the cosine decay runs over: ``steps`` (``max_steps``) or ``budget`` (whichever of ``max_steps`` and
    #: ``max_minutes`` runs out first, so the rate reaches its floor when a timed run stops, however fast it stepped).
    lr_decay: str = "steps"
    grad_clip: float = 1.0
    #: Decay of the weights' moving average the run is evaluated and saved with (e.g. 0.999; None: the last weights).
    ema: float | None = None
    precision: str = "32-true"
    accelerator: str = "cpu"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"
    num_workers: int = 2
    threads: int | None = None
    log_every: int = 10
    ckpt_every: int = 500
    out_dir: str = "runs"
    seed: int = 0
    resume: bool = True
    progress: bool = True
    #: Checkpoint, run folder or saved folder whose weights initialise the policy (e.g. stage 1).
    init_from: str | None = None
    #: Parameter-name prefixes that must all be initialised from ``init_from`` (empty: every match).
    init_prefixes: list[str] = field(default_factory=list)
    #: Parameter-name prefixes kept frozen (e.g. ``world_model`` in a second training stage).
    freeze: list[str] = field(default_factory=list)


@dataclass
class EvalSpec:
    """Closed-loop evaluation settings."""

    suite: str = "mw-easy"
    episodes: int = 10
    seed: int = 1_000_000
    replan: int = 8
    ensemble: float | None = None  # temporal ensembling's m (a call every step; see wamzoo.evaluate.PolicyAgent)
    max_steps: int | None = None
    workers: int = 2
    batch: int = 10


@dataclass
class RecipeSchema:
    name: str = ""
    description: str = ""
    policy: dict[str, Any] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=lambda: {"name": "synthetic"})
    trainer: TrainerSpec = field(default_factory=TrainerSpec)
    eval: EvalSpec = field(default_factory=EvalSpec)


@dataclass
class Recipe:
    """A composed, validated recipe (plain containers)."""

    name: str
    description: str
    policy: dict[str, Any]
    data: dict[str, Any]
    trainer: TrainerSpec
    eval: EvalSpec
    source: str = ""
    #: What composition did that a reader may not expect (arguments dropped when a component was replaced).
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("source")
        d.pop("notes")
        return d

    def to_yaml(self) -> str:
        return OmegaConf.to_yaml(OmegaConf.create(self.to_dict()))


def to_plain(x: Any) -> Any:
    """OmegaConf containers to plain dicts/lists (other values unchanged)."""
    if isinstance(x, (DictConfig, ListConfig)):
        return OmegaConf.to_container(x, resolve=True)
    if isinstance(x, Mapping):
        return {k: to_plain(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [to_plain(v) for v in x]
    return x


# -- lookup ----------------------------------------------------------------------------------
def recipe_index() -> dict[str, Path]:
    """Registered recipe names (``recipe`` entries of the registry), then the paths of the files inside
    the registered recipe folders (``base/tiny``; the first folder that has one wins)."""
    plugins = get_plugins()
    index = {e.name: e.target for e in plugins.registry.entries(kind="recipe")}
    for _, folder in plugins.recipe_dirs:
        for path in sorted(folder.rglob("*.yaml")):
            index.setdefault(path.relative_to(folder).with_suffix("").as_posix(), path)
    return index


def list_recipes(pattern: str = "*") -> list[str]:
    """Recipe names matching a shell-style pattern (only files that declare a ``name``)."""
    return [e.name for e in get_plugins().registry.entries(pattern, "recipe")]


def find_recipe(ref: str | Path, base: Path | None = None) -> Path:
    """A recipe file from a path (absolute, relative to ``base`` or the cwd) or a registered name."""
    ref_s = str(ref)
    candidates = [Path(ref_s)]
    if base is not None:
        candidates.insert(0, base / ref_s)
    for p in candidates:
        for q in (p, p.with_suffix(".yaml")) if p.suffix != ".yaml" else (p,):
            if q.is_file():
                return q.resolve()
    registry = get_plugins().registry
    if ("recipe", ref_s) in registry:
        return registry.get("recipe", ref_s).target
    index = recipe_index()
    if ref_s in index:
        return index[ref_s]
    raise unknown("recipe", ref_s, registry.names("recipe"),
                  hint="Give a path to a YAML file or a name from `wamzoo list --recipes`.")


# -- composition -----------------------------------------------------------------------------
def _load(path: Path, seen: tuple[Path, ...], notes: list[str]) -> DictConfig:
    if path in seen:
        chain = " -> ".join(str(p) for p in seen + (path,))
        raise RecipeError(f"recipe defaults form a cycle: {chain}")
    try:
        cfg = OmegaConf.load(path)
    except (OmegaConfBaseException, OSError, ValueError, yaml.YAMLError) as exc:
        raise RecipeError(f"{path}: cannot be parsed: {exc}") from None
    if not isinstance(cfg, DictConfig):
        raise RecipeError(f"{path}: a recipe must be a mapping at the top level")
    defaults = cfg.pop("defaults", [])
    if not isinstance(defaults, (ListConfig, list)):
        raise RecipeError(f"{path}: `defaults` must be a list of recipe files or names")
    merged = OmegaConf.create({})
    for ref in defaults:
        try:
            sub = find_recipe(str(ref), base=path.parent)
        except KeyError as exc:
            raise RecipeError(f"{path}: defaults entry {ref!r}: {exc}") from None
        merged = _merge(merged, _load(sub, seen + (path,), notes), str(sub), notes)
    return _merge(merged, cfg, str(path), notes)


#: Sections that name a component: naming another one keeps only the arguments it accepts.
NAMED_SECTIONS = tuple(f"policy.{part}" for part in POLICY_PARTS) + ("data",)


def _merge(base: DictConfig, top: DictConfig, where: str, notes: list[str]) -> DictConfig:
    """Merge ``top`` over ``base``; where ``top`` names another component, ``base``'s arguments it does not accept go."""
    base = base.copy()
    for key in NAMED_SECTIONS:
        new, old = OmegaConf.select(top, f"{key}.name"), OmegaConf.select(base, f"{key}.name")
        if new is None or old is None or new == old:
            continue
        section = OmegaConf.select(base, key)
        accepted = _accepted(key.rpartition(".")[2], str(new))
        dropped = [k for k in section if k != "name" and accepted is not None and k not in accepted]
        for k in dropped:
            del section[k]
        if dropped:
            notes.append(f"{key}: {new} ({where}) replaces {old}; dropped {', '.join(dropped)}, which {new} does"
                         " not take")
    return OmegaConf.merge(base, top)


def _accepted(kind: str, name: str) -> set[str] | None:
    """The argument names component ``name`` of ``kind`` takes (``None``: any); empty if it is unknown."""
    try:
        params = get_plugins().registry.get(kind, name).parameters()
    except KeyError:  # an unknown name: validate() reports it
        return set()
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return None
    return {k for k, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL}


def compose(ref: str | Path, overrides: Iterable[str] = ()) -> Recipe:
    """Load, compose, override and validate a recipe."""
    path = find_recipe(ref)
    notes: list[str] = []
    cfg = _load(path, (), notes)
    overrides = list(overrides)
    bare = [o for o in overrides if "=" not in o]
    if bare:
        raise RecipeError(f"override {bare[0]!r} has no '='; write it as key=value, e.g. {bare[0]}=VALUE")
    base = cfg
    if overrides:
        try:
            cfg = _merge(cfg, OmegaConf.from_dotlist(overrides), "command line", notes)
        except OmegaConfBaseException as exc:
            raise RecipeError(f"command-line overrides {overrides}: {exc}") from None
    recipe = _validate(cfg, base, overrides, str(path))
    recipe.notes = notes
    return recipe


def _validate(cfg: DictConfig, base: DictConfig, overrides: list[str], source: str) -> Recipe:
    """:func:`validate` ``cfg`` (``base`` with ``overrides``); an error the overrides cause names them, not the file."""
    try:
        return validate(cfg, source)
    except RecipeError as exc:
        if not overrides:
            raise
        validate(base, source)  # the file alone fails: its own error names it
        named = [o for o in overrides if o.partition("=")[0] in str(exc)] or overrides
        return validate(cfg, "override " + " ".join(named))


def validate(cfg: DictConfig | Mapping[str, Any], source: str = "<recipe>") -> Recipe:
    """Check ``cfg`` against the schema and the named components' constructors."""
    cfg = cfg if isinstance(cfg, DictConfig) else OmegaConf.create(dict(cfg))
    try:
        typed = OmegaConf.merge(OmegaConf.structured(RecipeSchema), cfg)
        plain = OmegaConf.to_container(typed, resolve=True)
    except OmegaConfBaseException as exc:
        key = getattr(exc, "full_key", "") or ""
        msg = str(exc).split("\n")[0]
        raise RecipeError(f"{source}: key {key!r}: {msg}") from None
    reg = get_plugins().registry
    policy = plain["policy"]
    for part in POLICY_PARTS:
        spec = policy.get(part)
        if spec is None:
            if part == "codec":
                continue
            raise RecipeError(f"{source}: policy.{part} is missing; name a registered {part.replace('_', ' ')}")
        if not isinstance(spec, dict) or "name" not in spec:
            raise RecipeError(f"{source}: policy.{part} must be a mapping with a `name`")
        _check(reg, part, spec, f"{source}: policy.{part}", partial=True)
    check_composition({r: reg.get(r, policy[r]["name"]).obj for r in ROLES}, {r: policy[r]["name"] for r in ROLES})
    unknown_parts = set(policy) - set(POLICY_PARTS) - {"context", "normalize", "loss_weights"}
    if unknown_parts:
        raise RecipeError(f"{source}: unknown policy key(s) {sorted(unknown_parts)}; known: "
                          f"{', '.join(POLICY_PARTS + ('context', 'normalize', 'loss_weights'))}")
    if plain["trainer"]["lr_decay"] not in LR_DECAYS:
        raise RecipeError(f"{source}: trainer.lr_decay must be one of {', '.join(LR_DECAYS)}, got"
                          f" {plain['trainer']['lr_decay']!r}")
    data = plain["data"]
    if "name" not in data:
        raise RecipeError(f"{source}: data.name is missing; name a registered data module")
    _check(reg, "data", data, f"{source}: data", partial=True)
    return Recipe(name=plain["name"] or Path(source).stem, description=plain["description"], policy=policy,
                  data=data, trainer=TrainerSpec(**plain["trainer"]), eval=EvalSpec(**plain["eval"]), source=source)


def _check(reg, kind: str, spec: dict, where: str, partial: bool) -> None:
    try:
        entry = reg.get(kind, spec["name"])
    except KeyError as exc:
        raise RecipeError(f"{where}.name: {exc}") from None
    args = {k: v for k, v in spec.items() if k != "name"}
    try:
        check_arguments(entry, args, where)
    except ConfigError as exc:
        if partial and "needs argument" in str(exc):
            params = entry.parameters()
            missing = [k for k, p in params.items() if p.default is p.empty and k not in args and k not in INJECTED
                       and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
            if not missing:
                return
        raise RecipeError(str(exc)) from None
