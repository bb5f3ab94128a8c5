"""``wamzoo doctor``: loaded plugins, their problems, and the environment."""

from __future__ import annotations

import os
import platform

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wamzoo.plugins import get_plugins


def doctor(console: Console) -> int:
    plugins = get_plugins()
    table = Table(title="plugins")
    for col in ("plugin", "version", "module", "registered"):
        table.add_column(col)
    for info in plugins.info.values():
        counts = ", ".join(f"{v} {k}" for k, v in sorted(info.counts.items())) or "nothing"
        table.add_row(info.name, info.version, info.module, counts)
    console.print(table)
    if plugins.problems:
        probs = Table(title="problems", style="red")
        probs.add_column("plugin")
        probs.add_column("problem")
        for p in plugins.problems:
            probs.add_row(p.plugin, escape(p.what))
        console.print(probs)
    else:
        console.print("[green]no plugin problems[/]")
    env = Table(title="environment")
    env.add_column("item")
    env.add_column("value")
    import torch

    env.add_row("python", platform.python_version())
    env.add_row("torch", f"{torch.__version__} (threads {torch.get_num_threads()}, cuda {torch.cuda.is_available()})")
    env.add_row("MUJOCO_GL", os.environ.get("MUJOCO_GL", "(unset: wamzoo sets egl)"))
    for mod in ("lightning", "diffusers", "huggingface_hub", "metaworld", "mujoco", "timm"):
        try:
            m = __import__(mod)
            env.add_row(mod, getattr(m, "__version__", "?"))
        except Exception as exc:  # report, do not fail
            env.add_row(mod, f"[red]not importable: {escape(repr(exc))}[/]")
    console.print(env)
    return 1 if plugins.problems else 0
