"""Model cards: ``hub_cards/base.md`` plus one fragment per plugin, rendered through huggingface_hub.

A policy's card names its components and the plugins that provide them; the fragment of every
such plugin (``hub_cards/<plugin>.md``, or ``card.md`` inside a third-party plugin's package) is
appended — no per-plugin branches in the base template. Evaluation results come from the
evaluator's JSON (``wamzoo eval ... --json``) and become ``model-index`` entries.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any, Mapping

from wamzoo.plugins import get_plugins

CARDS = Path(__file__).parent / "hub_cards"
PARTS = (("world model", "world_model"), ("action expert", "action_expert"), ("coupling", "coupling"),
         ("scheduler", "scheduler"), ("codec", "codec"))


def fragment(plugin: str) -> str | None:
    """The card fragment of ``plugin`` (its entry-point name), if any."""
    path = CARDS / f"{plugin}.md"
    if path.is_file():
        return path.read_text().strip()
    info = get_plugins().info.get(plugin)
    spec = importlib.util.find_spec(info.module) if info else None
    if spec and spec.origin:
        own = Path(spec.origin).parent / "card.md"
        if own.is_file():
            return own.read_text().strip()
    return None


def render_card(policy, name: str, results: Mapping[str, Any] | None = None, summary: str = "",
                tags: list[str] | None = None, dtype: str | None = None) -> str:
    """Markdown model card for ``policy`` published as ``name`` (optionally with evaluator results);
    ``dtype``: the precision the parameters are stored at, when not the policy's own."""
    from huggingface_hub import EvalResult, ModelCard, ModelCardData

    reg = get_plugins().registry
    spec = policy.config.get("policy") or {}
    parts, plugins = [], []
    for role, key in PARTS:
        if key in spec:
            comp = spec[key]["name"]
            plugin = reg.get(key, comp).plugin if (key, comp) in reg else "?"
            parts.append({"role": role, "name": comp, "plugin": plugin})
            if plugin not in plugins and plugin != "wamzoo":
                plugins.append(plugin)
    recipe = policy.config.get("recipe") or {}
    suite = (results or {}).get("suite") or (recipe.get("eval") or {}).get("suite", "mw-easy")
    per_task = {t: float(r["success_rate"]) for t, r in ((results or {}).get("tasks") or {}).items()}
    eval_results = [EvalResult(task_type="robotics", dataset_type="metaworld", dataset_name=f"Meta-World {suite}",
                               dataset_config=task, metric_type="success_rate", metric_name=f"success rate ({task})",
                               metric_value=rate) for task, rate in per_task.items()]
    data = ModelCardData(library_name="wamzoo", pipeline_tag="robotics", license="apache-2.0",
                         tags=["wamzoo", "world-action-model", "robotics", *plugins, *(tags or [])],
                         datasets=[f"metaworld/{suite}"], model_name=name, eval_results=eval_results or None)
    info = policy.info
    card = ModelCard.from_template(
        data, template_path=str(CARDS / "base.md"), model_name=name, load_name=name,
        summary=summary or recipe.get("description", ""), parts=parts,
        params_m=f"{sum(p.numel() for p in policy.parameters()) / 1e6:.2f}",
        horizon=info.horizon, action_dim=info.action_dim, num_views=info.num_views, height=info.height,
        width=info.width, tasks=info.tasks, suite=suite, results=per_task,
        mean_success=(results or {}).get("mean_success_rate", 0.0),
        episodes=next(iter(((results or {}).get("tasks") or {}).values()), {}).get("episodes", 0),
        eval_seeds=_seed_range((results or {}).get("seeds") or []), eval_command=(results or {}).get("command", ""),
        recipe_name=recipe.get("name", ""), budget=_budget(recipe.get("trainer") or {}),
        demonstrations=_demonstrations(recipe.get("data") or {}),
        init_from=(recipe.get("trainer") or {}).get("init_from") or "",
        stored_dtype=dtype if dtype not in (None, "float32") else "",
        fragments=[f for f in map(fragment, plugins) if f])
    return str(card)


def _budget(trainer: Mapping[str, Any]) -> str:
    """The training budget a recipe declared: ``at most 60 minutes or 2400 steps on 1 CPU thread(s), batch 32``."""
    if not trainer:
        return ""
    limits = [f"{trainer['max_minutes']:g} minutes"] if trainer.get("max_minutes") else []
    limits.append(f"{trainer.get('max_steps', 0)} steps")
    where = f"{trainer['threads']} CPU thread(s)" if trainer.get("threads") else trainer.get("accelerator", "cpu")
    batch, ranks = trainer.get("batch_size", "?"), trainer.get("devices", 1)
    if isinstance(ranks, int) and ranks > 1 and isinstance(batch, int):  # data parallel: each rank its own batch
        return (f"at most {' or '.join(limits)} on {ranks} data-parallel processes ({where} each), batch {batch} per"
                f" process ({ranks * batch} a step)")
    return f"at most {' or '.join(limits)} on {where}, batch {batch}"


def _demonstrations(data: Mapping[str, Any]) -> str:
    """How a recipe's generated demonstrations were made: ``50 demonstrations per task by Meta-World's scripted
    experts, reach's aimed with the fingertips, each going on 24 steps past its first success; cameras front, top``."""
    if not data.get("episodes"):
        return ""
    how = [f"{data['episodes']} demonstrations per task by Meta-World's scripted experts"]
    if data.get("aim", "wrist") != "wrist":
        how.append(f"reach's aimed with the {data['aim']}")
    if data.get("noise"):
        how.append(f"executed with Gaussian noise {data['noise']:g} (DART)")
    if data.get("settle"):
        how.append(f"each going on {data['settle']} steps past its first success")
    cameras = f"; cameras {', '.join(data['cameras'])}" if data.get("cameras") else ""
    return ", ".join(how) + cameras


def _seed_range(seeds: list[int]) -> str:
    """``1000000..1000019`` for the evaluator's list of episode seeds."""
    return f"{min(seeds)}..{max(seeds)}" if seeds else "(not recorded)"
