"""A resumable evaluation: episodes recorded as they finish, reused when the same evaluation runs again.

``wamzoo eval POLICY --json F`` appends every finished group of episodes to ``F.partial`` (JSON lines). An
evaluation stopped part-way (Ctrl-C, a lost session, a crash) leaves that journal behind, and the same
command run again runs only the episodes it lacks; asking for more episodes or tasks than before reuses the
ones already done. The journal's first line holds the settings an episode's outcome depends on (the
policy's :func:`fingerprint`, ``replan``, ``max_steps``, ``frame_lag``, ``ensemble``, device and dtype;
not ``workers`` or ``batch``, which change no episode): a journal written under other settings is refused,
never overwritten. Once the report is written the journal is removed.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch

from wamzoo.errors import OutputError

#: Values of each tensor that enter the fingerprint (evenly spaced): enough to tell trained weights apart,
#: cheap for a billion-parameter policy.
FINGERPRINT_VALUES = 1024


def fingerprint(module: torch.nn.Module) -> str:
    """A short digest of ``module``'s state (names, shapes and up to 1024 evenly spaced values per tensor)."""
    h = hashlib.sha256()
    for name, t in sorted(module.state_dict().items()):
        h.update(f"{name}{tuple(t.shape)}".encode())
        flat = t.detach().reshape(-1)
        if flat.numel():
            idx = torch.linspace(0, flat.numel() - 1, min(flat.numel(), FINGERPRINT_VALUES)).long()
            h.update(flat[idx.to(flat.device)].float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


def read(path: str | Path) -> tuple[dict | None, dict[tuple[str, int], dict], dict[int, float]]:
    """A journal's settings, its finished episodes by ``(task, seed)``, and each run's wall time so far."""
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:  # a line cut short when the evaluation was killed
            continue
    done: dict[tuple[str, int], dict] = {}
    walls: dict[int, float] = {}
    for rec in records[1:]:
        for ep in rec["episodes"]:
            done[(ep["task"], ep["seed"])] = ep
        walls[rec["run"]] = max(walls.get(rec["run"], 0.0), rec["elapsed_s"])
    return (records[0].get("settings") if records else None), done, walls


class EvalJournal:
    """The episodes an evaluation has finished, kept in ``path`` (module doc).

    ``done`` maps ``(task, seed)`` to an episode's record; ``previous_wall_s`` is the wall time the earlier
    runs spent, so that a resumed evaluation reports its whole cost.
    """

    def __init__(self, path: str | Path, settings: dict[str, Any]):
        self.path, self.settings = Path(path), settings
        if self.path.exists():
            theirs, self.done, walls = read(self.path)
            if theirs != settings:
                raise OutputError(f"{self.path} holds episodes of another evaluation (its settings {theirs}, these"
                                  f" {settings}); give another --json path, or remove {self.path} to start over")
        else:
            self.done, walls = {}, {}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps({"settings": settings}) + "\n")
        self.run = max(walls, default=-1) + 1
        self.previous_wall_s = sum(walls.values())

    def record(self, episodes: list[dict], elapsed_s: float) -> None:
        """Append finished episodes; ``elapsed_s``: this run's wall time so far."""
        with self.path.open("a") as f:
            f.write(json.dumps({"run": self.run, "elapsed_s": elapsed_s, "episodes": episodes}) + "\n")
