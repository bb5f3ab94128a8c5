"""Resolve a reference to a policy: checkpoints, saved folders, pretrained names, recipes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wamzoo import hub
from wamzoo.errors import LoadError
from wamzoo.policy import WAMPolicy
from wamzoo.recipes import compose, find_recipe


def load_policy(ref: str, device: str | None = None, dtype: str | None = None, **kwargs: Any) -> WAMPolicy:
    """Load a trained policy from ``ref``, placed on ``device`` at ``dtype`` when given
    (:meth:`~wamzoo.policy.WAMPolicy.place`; default: CPU, float32).

    Accepted: a Lightning ``.ckpt`` written by ``wamzoo train``; a run folder (its
    ``checkpoints/last.ckpt``); a folder written by ``save_pretrained``; ``hf-hub:org/repo``; a
    registered pretrained name.
    """
    policy = _load(ref, **kwargs)
    return policy.place(device, dtype) if device is not None or dtype is not None else policy


def _load(ref: str, **kwargs: Any) -> WAMPolicy:
    path = Path(ref)
    if path.is_dir() and not (path / "checkpoints" / "last.ckpt").exists() and any(
            (path / mark).exists() for mark in ("checkpoints", "hparams.yaml", "metrics.csv")):
        raise LoadError(f"{path} is a training run with no checkpoint yet; `wamzoo train` writes"
                        " checkpoints/last.ckpt every trainer.ckpt_every steps and when it stops: wait for it,"
                        " or give a run that has one")
    if path.is_dir() and (path / "checkpoints" / "last.ckpt").is_file():
        path = path / "checkpoints" / "last.ckpt"
    if path.is_file() and path.suffix == ".ckpt":
        from wamzoo.training import load_checkpoint  # Lightning's import is slow: only for checkpoints

        return load_checkpoint(path)
    return hub.load(ref, WAMPolicy.from_config, **kwargs)


def policy_for_target(ref: str, overrides: list[str] | None = None, device: str | None = None,
                      dtype: str | None = None) -> tuple[WAMPolicy, str]:
    """A policy for benchmarks: a trained one if ``ref`` loads, else an untrained one from a recipe, placed
    on ``device`` at ``dtype``. Returns the policy and a label saying which ("trained" or "recipe").
    """
    try:
        recipe_path = find_recipe(ref)
    except KeyError:
        recipe_path = None
    if recipe_path is None or Path(ref).suffix == ".ckpt":
        return load_policy(ref, device=device, dtype=dtype), "trained"
    from wamzoo.training import make_datamodule  # Lightning's import is slow: only for recipes

    recipe = compose(recipe_path, overrides or [])
    info = make_datamodule(recipe).describe()
    policy = WAMPolicy.from_config(recipe.policy, info)
    policy.config["recipe"] = recipe.to_dict()
    return policy.place(device, dtype).eval(), "recipe"
