"""``WamzooPolicy``: a wamzoo ``WAMPolicy`` behind LeRobot's ``PreTrainedPolicy`` contract.

LeRobot's batch maps onto :class:`wamzoo.batch.Batch`: the policy's cameras from ``observation.images.*``
(``[B, T, 3, H, W]`` with delta indices, else ``[B, 3, H, W]``) stacked into ``rgb [B, T, V, 3, H, W]``,
``observation.state`` at the present step, ``action`` and ``action_is_pad``, ``<camera>_is_pad`` as
``frame_pad``, and ``task`` (strings) as the policy's task ids (or its text instruction). ``forward`` is
``compute_loss``; ``predict_action_chunk`` is ``predict_action`` (robot units); ``select_action`` pops a queue
refilled with ``n_action_steps`` actions of each chunk. The wrapped model is ``self.model``; saving writes
LeRobot's folder plus wamzoo's native one in ``wamzoo/`` (``wamzoo.load(folder)`` reads either).
"""

from __future__ import annotations

import json
from collections import deque
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from lerobot.policies.pretrained import PreTrainedPolicy
from lerobot.utils.constants import ACTION, OBS_STATE
from lerobot_policy_wamzoo.configuration_wamzoo import WamzooConfig, WamzooConfigError, load_pretrained

#: LeRobot's Meta-World env gives ``task`` as a sentence; a policy trained on task names knows them by name.
_METAWORLD_SENTENCES: dict[str, str] | None = None


class WamzooPolicy(PreTrainedPolicy):
    """A wamzoo World Action Model as a LeRobot policy (see module doc)."""

    config_class = WamzooConfig
    name = "wamzoo"

    def __init__(self, config: WamzooConfig, dataset_stats: dict | None = None, dataset_meta: Any = None,
                 **kwargs: Any):
        super().__init__(config)
        config.validate_features()
        self.model = build_model(config, dataset_stats, dataset_meta)
        self.info = self.model.info
        self.reset()

    # -- LeRobot's contract ------------------------------------------------------------------
    def get_optim_params(self) -> dict:
        return self.model.parameters()

    def reset(self) -> None:
        self.model.reset()
        self._actions: deque[Tensor] = deque()
        self._frames: deque[Tensor] = deque(maxlen=(self.info.n_obs - 1) * self.info.frame_stride + 1)

    def forward(self, batch: dict[str, Any]) -> tuple[Tensor, dict]:
        loss, logs = self.model.compute_loss(self.to_wamzoo(batch, train=True))
        return loss, logs

    @torch.no_grad()
    def predict_action_chunk(self, batch: dict[str, Any], **kwargs: Any) -> Tensor:
        obs = self.to_wamzoo(batch, train=False)
        if len(self._frames):  # select_action keeps the history of frames a policy with n_obs > 1 reads
            obs = obs.replace(rgb=self._history())
        texts = _texts(batch, obs.batch_size) if self.model.context.text_encoder else None
        return self.model.predict_action(obs, seed=self.config.seed, instruction=texts)

    @torch.no_grad()
    def select_action(self, batch: dict[str, Any], **kwargs: Any) -> Tensor:
        if self.info.n_obs > 1:
            frame = self.to_wamzoo(batch, train=False).rgb[:, -1]
            while len(self._frames) < self._frames.maxlen - 1:  # the first step: history repeats it
                self._frames.append(frame)
            self._frames.append(frame)
        if not self._actions:
            chunk = self.predict_action_chunk(batch)
            steps = self.config.n_action_steps or chunk.shape[1]
            self._actions.extend(chunk[:, :steps].transpose(0, 1))
        return self._actions.popleft()

    def _history(self) -> Tensor:
        frames = list(self._frames)[:: -self.info.frame_stride][::-1]  # every stride-th, ending at the present
        return torch.stack(frames, dim=1)

    # -- batch mapping -----------------------------------------------------------------------
    def camera_keys(self, batch: dict[str, Any]) -> list[str]:
        """The LeRobot image keys giving the policy's views, in its camera order; a clear error if they do not fit."""
        if self.config.image_keys:
            keys = list(self.config.image_keys)
        else:
            cams = list(self.info.cameras)
            keys = [f"observation.images.{c}" for c in cams]
            if not cams or any(k not in batch for k in keys):
                given = [k for k in self.config.image_features if k in batch] or _image_keys(batch)
                keys = given if len(given) == self.info.num_views else keys
        missing = [k for k in keys if k not in batch]
        if missing or len(keys) != self.info.num_views:
            raise WamzooConfigError(
                f"the policy reads {self.info.num_views} view(s) {list(self.info.cameras)} but the batch gives"
                f" {_image_keys(batch)}; map them with --policy.image_keys='[{', '.join(_image_keys(batch))}]'"
                " (one per view, in the policy's camera order) or LeRobot's --rename_map")
        return keys

    def to_wamzoo(self, batch: dict[str, Any], train: bool):
        """LeRobot's batch as a :class:`wamzoo.batch.Batch` (see module doc)."""
        from wamzoo.batch import Batch
        from wamzoo.images import resize_frames

        info, keys = self.info, self.camera_keys(batch)
        views = []
        for k in keys:
            x = batch[k]
            x = x if x.ndim == 5 else x[:, None]  # [B, T, 3, H, W]
            B, T = x.shape[:2]
            if tuple(x.shape[-2:]) != (info.height, info.width) and not self.model.codec.resizes:
                if not self.config.resize_images or info.height != info.width:
                    raise WamzooConfigError(f"{k} is {tuple(x.shape[-2:])} pixels and the policy reads"
                                            f" {info.height}x{info.width}: give frames of that size or set"
                                            " --policy.resize_images=true")
                x = resize_frames(x.flatten(0, 1).float().clamp(0, 1), info.height).view(B, T, 3, info.height,
                                                                                          info.width)
            views.append(x)
        rgb = torch.stack(views, dim=2)
        n_obs = info.n_obs if train else min(info.n_obs, rgb.shape[1])
        if not train:
            rgb = rgb[:, :n_obs]
        state = batch.get(OBS_STATE)
        if info.state_dim:
            if state is None:
                raise WamzooConfigError(f"the policy reads a state of {info.state_dim} values and the batch has no"
                                        f" {OBS_STATE}; use an env or dataset that gives it (Meta-World:"
                                        " --env.obs_type=pixels_agent_pos)")
            state = state[:, n_obs - 1] if state.ndim == 3 else state
            if state.shape[-1] != info.state_dim:
                raise WamzooConfigError(f"{OBS_STATE} has {state.shape[-1]} values, the policy reads {info.state_dim}"
                                        f" ({info.cameras} policy trained on that data); train it on this env's data"
                                        " (`wamzoo data metaworld --lerobot-env`)")
            state = state.float()
        else:
            state = None
        fields: dict[str, Any] = dict(rgb=rgb, n_obs=n_obs, state=state, task_id=self.task_ids(batch, rgb.shape[0]))
        pad = batch.get(f"{keys[0]}_is_pad")
        if train:
            fields.update(action=batch[ACTION].float(), action_pad=batch.get(f"{ACTION}_is_pad"),
                          frame_pad=pad if pad is not None and pad.ndim == 2 else None)
        return Batch(**fields)

    def task_ids(self, batch: dict[str, Any], size: int) -> Tensor | None:
        """``task`` strings as the policy's task ids: its task names, or LeRobot's Meta-World sentences for them."""
        tasks, device = list(self.info.tasks), next(self.model.parameters()).device
        if not tasks:
            return None
        if len(tasks) == 1:
            return torch.zeros(size, dtype=torch.long, device=device)
        texts = _texts(batch, size)
        if texts is None:
            raise WamzooConfigError(f"the policy is conditioned on its task ({tasks}) and the batch has no `task`")
        ids = []
        for text in texts:
            name = text if text in tasks else _metaworld_name(text)
            if name not in tasks:
                raise WamzooConfigError(f"task {text!r} is unknown to this policy; it was trained on {tasks}: evaluate"
                                        " it on those (--env.task=...)")
            ids.append(tasks.index(name))
        return torch.tensor(ids, dtype=torch.long, device=device)

    # -- persistence --------------------------------------------------------------------------
    def _save_pretrained(self, save_directory: Path, state_dict: dict[str, Tensor] | None = None) -> None:
        super()._save_pretrained(save_directory, state_dict)
        self.model.save_pretrained(Path(save_directory) / "wamzoo", force=True)


def build_model(config: WamzooConfig, dataset_stats: dict | None, dataset_meta: Any):
    """The wamzoo policy of ``config``: from its saved configuration, a pretrained reference or a recipe built
    for the dataset; records the composed configuration in ``config.wamzoo``."""
    import wamzoo
    from wamzoo.data.info import DataInfo
    from wamzoo.policy import WAMPolicy

    if config.wamzoo:
        saved = json.loads(config.wamzoo)
        model = WAMPolicy.from_config(saved["policy"], DataInfo.from_dict(saved["data"]))
    elif config.pretrained is not None:
        model = load_pretrained(config.pretrained)
    else:
        from wamzoo.recipes import compose

        recipe = compose(config.recipe, config.overrides)
        model = WAMPolicy.from_config(recipe.policy, data_info(config, dataset_stats, dataset_meta))
    config.wamzoo = json.dumps({"policy": model.config["policy"], "data": model.info.to_dict(with_stats=True)})
    config.wamzoo_version = wamzoo.__version__
    return model


def data_info(config: WamzooConfig, stats: dict | None, meta: Any):
    """The :class:`~wamzoo.data.info.DataInfo` of a LeRobot dataset for a fresh policy of ``config``'s recipe."""
    from wamzoo.data.info import DataInfo
    from wamzoo.normalize import STATS

    if meta is None:
        raise WamzooConfigError("a fresh wamzoo recipe is built for a dataset (lerobot-train --dataset.repo_id=...);"
                                " to evaluate, give a trained policy: --policy.pretrained=NAME_OR_FOLDER or"
                                " --policy.path=FOLDER")
    images = {k: ft.shape for k, ft in config.image_features.items()}
    keys = list(config.image_keys) or list(images)
    shapes = {tuple(images[k][-2:]) for k in keys}
    if len(shapes) != 1:
        raise WamzooConfigError(f"the cameras {keys} have different sizes {sorted(shapes)}; pick cameras of one size"
                                " with --policy.image_keys")
    (height, width), = shapes
    state = config.robot_state_feature
    tasks = list(meta.tasks.sort_values("task_index").index) if meta.tasks is not None else []
    wanted = {"action": ACTION, "state": OBS_STATE} if state is not None else {"action": ACTION}
    kept = {}
    for name, key in wanted.items():
        given = {s: v for s, v in (stats or {}).get(key, {}).items() if s in STATS}
        if set(given) != set(STATS):
            raise WamzooConfigError(f"the dataset's statistics of {key!r} lack {sorted(set(STATS) - set(given))};"
                                    " recompute them (`wamzoo data stats DIR --force` for a local dataset)")
        kept[name] = {s: torch.as_tensor(v).flatten().tolist() for s, v in given.items()}
    return DataInfo(action_dim=config.action_feature.shape[0], state_dim=state.shape[0] if state is not None else 0,
                    num_views=len(keys), height=height, width=width, tasks=[str(t) for t in tasks],
                    horizon=config.horizon, n_obs=config.n_obs, n_future=config.n_future,
                    frame_stride=config.frame_stride, fps=float(meta.fps),
                    cameras=[k.removeprefix("observation.images.") for k in keys], stats=kept)


def _image_keys(batch: dict[str, Any]) -> list[str]:
    return [k for k, v in batch.items() if k.startswith("observation.image") and not k.endswith("_is_pad")
            and isinstance(v, Tensor)]


def _texts(batch: dict[str, Any], size: int) -> list[str] | None:
    task = batch.get("task")
    if task is None:
        return None
    return [task] * size if isinstance(task, str) else [str(t) for t in task]


def _metaworld_name(sentence: str) -> str | None:
    global _METAWORLD_SENTENCES
    if _METAWORLD_SENTENCES is None:
        import importlib.resources

        path = importlib.resources.files("lerobot.envs").joinpath("metaworld_config.json")
        described = json.loads(path.read_text())["TASK_DESCRIPTIONS"]
        _METAWORLD_SENTENCES = {v: k for k, v in described.items()}
    return _METAWORLD_SENTENCES.get(sentence)
