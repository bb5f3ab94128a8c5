"""Hugging Face Hub I/O: the native folder format, pretrained policies and converters by name.

A saved policy is a folder::

    config.json          {"wamzoo_schema": 1, "policy": {...}, "data": {...}, "recipe": {...}}
    model.safetensors    every weight (normalisation statistics included)
    stats.json           the normalisation statistics, readable
    README.md            model card

Loading is strict: a missing or unexpected key, a missing statistics file or a config written by a
newer schema is an error naming what is wrong — never a silently untrained policy.

Pretrained policies and converters are ``pretrained`` and ``converter`` entries of the one registry
(:mod:`wamzoo.registry`). This module builds no policy itself: :func:`load` is given the builder
(:meth:`wamzoo.policy.WAMPolicy.from_config`), so the policy layer sits above it.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from wamzoo.cards import render_card
from wamzoo.data.info import DataInfo
from wamzoo.errors import LoadError, OutputError, StatsError
from wamzoo.plugins import get_plugins
from wamzoo.registry import NATIVE_FILES, Pretrained, import_target

if TYPE_CHECKING:  # torch is imported where used
    import torch
    from torch import nn

SCHEMA_VERSION = 1
CONFIG, WEIGHTS, STATS = NATIVE_FILES
#: The subfolder where another tool's checkpoint keeps the wamzoo policy it wraps (LeRobot's, written by
#: ``lerobot_policy_wamzoo``); ``load`` reads a folder holding one as that policy.
EMBEDDED = "wamzoo"
CARD = "README.md"

#: Builds a policy from a saved ``policy`` section and its data's facts: :meth:`wamzoo.policy.WAMPolicy.from_config`.
Builder = Callable[[Mapping[str, Any], DataInfo], "nn.Module"]


# -- native format ---------------------------------------------------------------------------
#: The evaluator's settings of how a policy's chunks are executed, which an export keeps with its results.
EXECUTION = ("replan", "ensemble")


def _measured_execution(recipe: dict[str, Any] | None, results: dict[str, Any] | None) -> dict[str, Any] | None:
    """``recipe`` with its ``eval`` defaults set to the execution ``results`` were measured with."""
    if recipe is None or not results or not any(k in results for k in EXECUTION):
        return recipe
    return {**recipe, "eval": {**(recipe.get("eval") or {}), **{k: results[k] for k in EXECUTION if k in results}}}


def save_pretrained(policy: nn.Module, folder: str | os.PathLike, name: str | None = None,
                    results: dict[str, Any] | None = None, dtype: str | None = None, force: bool = False) -> Path:
    """Write ``policy`` (a :class:`~wamzoo.policy.WAMPolicy`) in the native format with its model card;
    returns the folder.

    ``results`` is the evaluator's JSON (``wamzoo eval --json``); it goes into the card, and the execution it
    was measured with (``replan``, ``ensemble``) becomes the export's evaluation default (the recipe's ``eval``
    section), so ``wamzoo eval`` of the export runs it the way its card measured it. ``dtype``
    (``float16``/``bfloat16``) stores the parameters at half size; loading casts them back to the
    policy's dtype (buffers keep theirs). A folder that is not empty is refused unless ``force``, which
    replaces the export there: its files are rewritten, a ``results.json`` this export lacks is removed,
    other files are left alone. The files are written to a temporary folder first, so a failure changes
    nothing.
    """
    import torch
    from safetensors.torch import save_file

    if dtype not in (None, "float32", "float16", "bfloat16"):
        raise ValueError(f"dtype {dtype!r}: choose float32, float16 or bfloat16")
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file; export into a folder")
    present = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    if present and not force:
        raise OutputError(f"{folder} is not empty ({', '.join(present[:4])}{', ...' if len(present) > 4 else ''});"
                          " export into a new folder, or pass --force (force=True) to replace the export there")
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        config = {"wamzoo_schema": SCHEMA_VERSION, "policy": policy.config.get("policy"),
                  "data": policy.info.to_dict() if policy.info else policy.config.get("data"),
                  "recipe": _measured_execution(policy.config.get("recipe"), results)}
        (tmp / CONFIG).write_text(json.dumps(config, indent=2, sort_keys=True))
        state = {k: v.detach().contiguous().cpu() for k, v in policy.state_dict().items()}
        if dtype is not None:
            params = {k for k, _ in policy.named_parameters()}
            state = {k: v.to(getattr(torch, dtype)) if k in params else v for k, v in state.items()}
        save_file(state, str(tmp / WEIGHTS), metadata={"format": "pt", "wamzoo_schema": str(SCHEMA_VERSION)})
        (tmp / STATS).write_text(json.dumps(policy.normalizer.stats(), indent=2))
        (tmp / CARD).write_text(render_card(policy, name or folder.name, results, dtype=dtype))
        if results is not None:
            (tmp / "results.json").write_text(json.dumps(results, indent=2))
        folder.mkdir(exist_ok=True)
        for f in (CONFIG, WEIGHTS, STATS, CARD, "results.json"):
            if (tmp / f).is_file():
                os.replace(tmp / f, folder / f)
            else:
                (folder / f).unlink(missing_ok=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def push_to_hub(policy: nn.Module, repo_id: str, results: dict[str, Any] | None = None, private: bool = False,
                token: str | None = None, revision: str | None = None, commit_message: str = "Upload wamzoo policy"):
    """Save ``policy`` to a temporary folder and upload it to ``repo_id``; returns the commit info."""
    import tempfile

    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=private, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        save_pretrained(policy, tmp, name=repo_id, results=results)
        return api.upload_folder(repo_id=repo_id, folder_path=tmp, revision=revision, commit_message=commit_message)


def load_weights_only(path: str | os.PathLike) -> Any:
    """A ``.ckpt``/``.pt`` file read with ``torch.load(weights_only=True)``: every checkpoint wamzoo reads
    (training runs, ``trainer.init_from``, released checkpoints) goes through here, and a pickle that
    would run code when loaded is refused, never loaded another way."""
    import pickle
    import re
    import warnings

    import torch

    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols it reads anyway
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        name = re.search(r"GLOBAL (\S+) was not an allowed", str(exc))
        what = f"it would import {name[1]}" if name else "it holds more than tensors and plain values"
        msg = (f"{path} is not a weights-only pickle ({what}, which can run any code); wamzoo reads only"
               " weights-only checkpoints: use one written by `wamzoo train` or `torch.save` of tensors")
    except (RuntimeError, EOFError, OSError) as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        msg = f"{path} cannot be read as a torch checkpoint ({reason}); it is truncated or corrupt: re-create it"
    raise LoadError(msg)


def from_folder(folder: str | os.PathLike, build: Builder) -> nn.Module:
    """Load a native-format folder (strict); ``build`` makes the policy its config describes."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    folder = Path(folder)
    for f in (CONFIG, WEIGHTS, STATS):
        if not (folder / f).is_file():
            raise LoadError(f"{folder} has no {f}; a wamzoo policy folder needs {CONFIG}, {WEIGHTS} and {STATS}"
                            " (written by `policy.save_pretrained`)")
    try:
        config = json.loads((folder / CONFIG).read_text())
        stats = json.loads((folder / STATS).read_text())
    except json.JSONDecodeError as exc:
        raise LoadError(f"{folder}: corrupted JSON: {exc}") from None
    schema = config.get("wamzoo_schema")
    if not isinstance(schema, int):
        raise LoadError(f"{folder / CONFIG} has no integer `wamzoo_schema`; it was not written by wamzoo")
    if schema > SCHEMA_VERSION:
        raise LoadError(f"{folder / CONFIG} uses schema {schema} but this wamzoo reads up to {SCHEMA_VERSION};"
                        " upgrade wamzoo (`pip install -U wamzoo`)")
    info = DataInfo.from_dict({**config["data"], "stats": stats})
    try:
        policy = build(config["policy"], info)
    except StatsError as exc:
        raise StatsError(f"{folder / STATS}: {exc.detail}; re-export the policy from its training run to rewrite it"
                         f" (`wamzoo export RUN {folder} --force`)", exc.detail) from None
    policy.config["recipe"] = config.get("recipe")
    try:
        state = load_file(str(folder / WEIGHTS))
    except (SafetensorError, OSError, ValueError) as exc:
        raise LoadError(f"{folder / WEIGHTS} is not a readable safetensors file ({exc}); re-download it") from None
    load_state_strict(policy, state, str(folder / WEIGHTS))
    return policy.eval()


def load_state_strict(policy: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """``load_state_dict`` that reports missing, unexpected and mis-shaped keys together."""
    own = policy.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: file {tuple(state[k].shape)} vs model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if state[k].shape != own[k].shape)
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected), ("wrong shape", shapes)):
            if items:
                parts.append(f"{len(items)} {label}: {', '.join(items[:8])}{' ...' if len(items) > 8 else ''}")
        raise LoadError(f"{source} does not fit the policy its config describes; " + "; ".join(parts))
    policy.load_state_dict(state, strict=True)


# -- names -----------------------------------------------------------------------------------
def resolve(name: str) -> Pretrained:
    """The registered pretrained policy ``name`` (``fast-wam.mw-easy-small``, or ``fast-wam/mw-easy-small``)."""
    return get_plugins().registry.get("pretrained", name, hint="See `wamzoo list --pretrained`, or pass a"
                                      " folder, a .ckpt file or hf-hub:org/repo.").target


def download(spec: Pretrained, cache_dir: str | None = None) -> dict[str, Path]:
    """Local paths of a pretrained policy's files (Hub cache; honours ``HF_HUB_OFFLINE``)."""
    if spec.repo_id.startswith("local:"):
        folder = Path(spec.repo_id[len("local:"):])
        files = {f: folder / f for f in spec.files}
        missing = [str(p) for p in files.values() if not p.is_file()]
        if missing:
            raise LoadError(f"pretrained {spec.name!r}: missing file(s) {missing}")
        return files
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    out = {}
    for f in spec.files:
        try:
            out[f] = Path(hf_hub_download(spec.repo_id, f, revision=spec.revision, cache_dir=cache_dir))
        except LocalEntryNotFoundError:
            raise LoadError(f"{spec.repo_id}/{f} is not in the Hugging Face cache and the Hub cannot be reached"
                            " (offline?); run `wamzoo pull NAME` with network access first") from None
        except (EntryNotFoundError, RepositoryNotFoundError) as exc:
            raise LoadError(f"{spec.repo_id}: {f} not found ({type(exc).__name__})") from None
    return out


def load(ref: str, build: Builder, cache_dir: str | None = None, **options: Any) -> nn.Module:
    """A policy from a local folder, ``hf-hub:org/repo[@revision]`` or a registered pretrained name;
    ``build`` makes a native-format policy (:meth:`wamzoo.policy.WAMPolicy.from_pretrained` passes
    ``from_config``), a converter makes an upstream one."""
    path = Path(ref)
    if path.is_dir():
        for folder in (path, path / EMBEDDED):
            if (folder / CONFIG).is_file() and "wamzoo_schema" in _json_or_empty(folder / CONFIG):
                return from_folder(folder, build)
        converter, files, found = recognise(path)
        return convert(converter, files, **{**found, **options})
    if ref.startswith("hf-hub:"):
        repo, _, revision = ref[len("hf-hub:"):].partition("@")
        spec = Pretrained(name=ref, repo_id=repo, revision=revision or None)
    else:
        spec = resolve(ref)
    files = download(spec, cache_dir)
    if spec.converter is None:
        return from_folder(next(iter(files.values())).parent, build)
    return convert(spec.converter, files, **{**spec.options, **options})


def _json_or_empty(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def recognise(folder: Path) -> tuple[str, dict[str, Path], dict[str, Any]]:
    """The converter of the checkpoint in ``folder``, with its files and options: a layout a converter
    recognises (its ``recognise``), else the files of one registered release (a pretrained name with a
    converter) found in ``folder`` or, for a release whose files sit in a run folder, in its parent.
    A folder that fits none, or several, raises :class:`LoadError` naming the layouts wamzoo reads."""
    registry = get_plugins().registry
    converters = [e for e in registry.entries(kind="converter") if e.recognise is not None]
    fits = []
    for e in converters:
        e.recognise = import_target(e.recognise)
        found = e.recognise(folder)
        if found is not None:
            fits.append((e.name, *found))
    releases = {}
    for e in registry.entries(kind="pretrained"):
        spec = e.target
        for root in (folder, folder.parent) if spec.converter and spec.files and not fits else ():
            if all((root / f).is_file() for f in spec.files):
                releases.setdefault(e.name, (spec.converter, {f: root / f for f in spec.files}, dict(spec.options)))
                break
    fits += releases.values()
    if len(fits) == 1:
        return fits[0]
    if fits:
        raise LoadError(f"{folder} fits several checkpoints ({', '.join(releases) or ', '.join(f[0] for f in fits)});"
                        " give the folder of one run, or load it by name (`wamzoo list --pretrained`)")
    layouts = [f"a wamzoo policy folder ({CONFIG} with wamzoo_schema, {WEIGHTS}, {STATS}: `save_pretrained`), or"
               f" a folder holding one in `{EMBEDDED}/` (a LeRobot checkpoint of `--policy.type=wamzoo`)"]
    layouts += [f"{e.name}: {(inspect.getdoc(e.recognise) or '').splitlines()[0]}" for e in converters]
    layouts += ["the files of a registered release, as its repository lays them out (`wamzoo info NAME` lists them)"]
    raise LoadError(f"{folder} holds no policy wamzoo can read; it reads " + "; ".join(layouts))


def convert(converter: str, files: dict[str, Path], **options: Any) -> nn.Module:
    """The policy the registered converter ``converter`` makes of a released checkpoint's ``files``."""
    return get_plugins().registry.get("converter", converter).obj(files, **options)
