"""``DataInfo``: the facts about a data set that a policy is built for, and the constructor arguments
they fill (:data:`INJECTED`).

A data module's ``describe()`` / ``info()`` return a :class:`DataInfo`;
:meth:`wamzoo.policy.WAMPolicy.from_config` reads it, and a saved policy stores it (``config.json``'s
``data``, its statistics in ``stats.json``). Plain data, no torch: the lowest layer of the core.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping


@dataclass
class DataInfo:
    """Facts about the data a policy is built for (from the dataset's metadata)."""

    action_dim: int
    state_dim: int = 0
    num_views: int = 1
    height: int = 64
    width: int = 64
    tasks: list[str] = field(default_factory=list)
    horizon: int = 16          # action chunk length K
    n_obs: int = 1             # observed frames per window
    n_future: int = 0          # future frames per window
    frame_stride: int = 1      # env steps between frames
    fps: float = 0.0
    cameras: list[str] = field(default_factory=list)
    stats: dict[str, dict[str, list[float]]] | None = None
    seed_range: list[int] | None = None   # [first, last + 1) layout seeds of the demonstrations
    lerobot_env: bool = False  # observations of LeRobot's Meta-World env (`wamzoo data metaworld --lerobot-env`)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "DataInfo":
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown data info keys {sorted(unknown)}; known: {sorted(names)}")
        return cls(**dict(d))

    def to_dict(self, with_stats: bool = False) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if not with_stats:
            d.pop("stats")
        return d


#: Constructor arguments filled from the data (and from the codec and context encoder the policy
#: builds for it) when a recipe leaves them out; :meth:`wamzoo.policy.WAMPolicy.from_config` fills
#: them, :func:`wamzoo.recipes.validate` does not ask for them.
INJECTED = ("action_dim", "state_dim", "horizon", "num_views", "latent_channels", "latent_height",
            "latent_width", "n_obs", "n_future", "context_dim", "num_tasks", "frame_stride", "future_frames")
