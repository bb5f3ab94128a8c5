"""Training any composition with Lightning: ``wamzoo train RECIPE [overrides]``.

One :class:`WAMModule` wraps a :class:`~wamzoo.policy.WAMPolicy`; its hyper-parameters are the
composed recipe and the data info (with statistics), so a checkpoint rebuilds its policy alone.
Runs write ``RUN/checkpoints/{last,step=N}.ckpt``, CSV logs (``RUN/metrics.csv``) and
TensorBoard logs (``RUN/tb``); with ``trainer.ema`` checkpoints carry the weights' moving average
(:mod:`wamzoo.ema`), which the run is then evaluated, exported and initialised from. A rerun resumes
from ``last.ckpt`` and appends to the logs. A run folder holding a run that this training would not
continue (another configuration, logs without a checkpoint, ``trainer.resume=false``) is refused
before anything is written. ``trainer.strategy`` is
passed to Lightning: ``ddp`` runs on CPUs with gloo, ``fsdp`` on GPUs.
"""

from __future__ import annotations

import csv
import math
import os
import random
from pathlib import Path
from typing import Any, Mapping

import lightning as L
import numpy as np
import torch
from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from wamzoo.ema import EMA, averaged
from wamzoo.errors import OutputError
from wamzoo.hub import load_weights_only
from wamzoo.data.info import DataInfo
from wamzoo.plugins import get_plugins
from wamzoo.policy import WAMPolicy
from wamzoo.recipes import Recipe, TrainerSpec
from wamzoo.runtime import autocast


class WAMModule(L.LightningModule):
    """Trains a :class:`WAMPolicy` built from ``recipe`` (a dict) and ``info`` (a :class:`DataInfo` dict)."""

    def __init__(self, recipe: Mapping[str, Any], info: Mapping[str, Any]):
        super().__init__()
        self.save_hyperparameters({"recipe": dict(recipe), "info": dict(info)})
        self.policy = WAMPolicy.from_config(recipe["policy"], DataInfo.from_dict(info))
        self.policy.config["recipe"] = dict(recipe)
        self.spec = TrainerSpec(**recipe["trainer"])
        if self.spec.init_from:
            initialise(self.policy, self.spec.init_from, self.spec.init_prefixes)
        freeze(self.policy, self.spec.freeze)

    def on_fit_start(self) -> None:
        """Under ``trainer.precision=bf16-true`` Lightning casts every weight; the normaliser stays float32. Under
        data parallelism each rank draws its own noise, timesteps and augmentations (``seed + rank``): one seed
        on every rank would give both shards of a step the same draws. The sampler's shuffle keeps one seed."""
        for m in self.policy.modules():
            if getattr(m, "keeps_float32", False):
                m.float()
        if self.trainer.world_size > 1:
            seed = self.spec.seed + self.global_rank
            random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)

    def training_step(self, batch, batch_idx):
        with autocast(self.policy.device, self.policy.dtype):  # weights below float32 (bf16-true): as in predict
            loss, logs = self.policy.compute_loss(batch)
        self.log_dict({f"train/{k}": v for k, v in logs.items()}, batch_size=batch.batch_size, sync_dist=False)
        self.log("loss", loss.detach(), prog_bar=True, batch_size=batch.batch_size, logger=False)
        return loss

    def configure_optimizers(self):
        opt = optimizer(self.policy, self.spec)
        warm = max(self.spec.warmup_steps, 1)

        def schedule(step: int) -> float:
            """Linear warm-up, then a cosine from 1 to 0.1 over the budget's spent fraction (:meth:`spent`)."""
            if step < warm:
                return (step + 1) / warm
            return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * self.spent(step)))

        sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def spent(self, step: int) -> float:
        """Fraction of the decay's budget spent after warm-up: of ``max_steps``, or under ``lr_decay=budget`` the
        larger of that and of ``max_minutes`` (Lightning's timer, which a resumed run continues) — Li et al. 2020,
        *Budgeted Training*: a schedule decayed to the budget's real end beats one cut short by it."""
        warm, total = max(self.spec.warmup_steps, 1), max(self.spec.max_steps, 1)
        by_steps = min(1.0, max(step - warm, 0) / max(total - warm, 1))
        timers = [c for c in self._trainer.callbacks if isinstance(c, Timer)] if self._trainer is not None else []
        if self.spec.lr_decay == "steps" or not self.spec.max_minutes or not timers:
            return by_steps
        elapsed = timers[0].time_elapsed("train")
        if getattr(self._trainer, "world_size", 1) > 1:  # rank 0's clock for every rank: their rates stay equal
            elapsed = self._trainer.strategy.broadcast(elapsed)
        return max(by_steps, min(1.0, elapsed / (60 * self.spec.max_minutes)))


def optimizer(policy: torch.nn.Module, spec: TrainerSpec) -> torch.optim.AdamW:
    """AdamW over the trainable weights, without weight decay on biases, norms, embeddings and tables; the
    fused kernel (one op per step, not several per tensor) where the weights' device has one."""
    decay, no_decay = [], []
    for name, p in policy.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if p.ndim < 2 or "embed" in name or "table" in name else decay).append(p)
    fused = all(p.device.type in ("cpu", "cuda") for p in decay + no_decay)
    return torch.optim.AdamW([{"params": decay, "weight_decay": spec.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=spec.lr, betas=tuple(spec.betas),
                             fused=fused or None)


def _prefixed(name: str, prefixes) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def source_state(ref: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Policy weights of a training checkpoint (its moving average if it has one), run folder or saved folder."""
    path = Path(ref)
    if path.is_dir() and (path / "checkpoints" / "last.ckpt").is_file():
        path = path / "checkpoints" / "last.ckpt"
    if path.is_file() and path.suffix == ".ckpt":
        state = averaged(load_weights_only(path))
        return {k[len("policy."):]: v for k, v in state.items() if k.startswith("policy.")}
    if path.is_dir() and (path / "model.safetensors").is_file():
        from safetensors.torch import load_file

        return load_file(str(path / "model.safetensors"))
    raise FileNotFoundError(f"trainer.init_from={ref!r}: no .ckpt, run folder or saved policy folder there")


def initialise(policy: WAMPolicy, ref: str | os.PathLike, prefixes=()) -> list[str]:
    """Copy weights of matching name and shape from ``ref``; every key under ``prefixes`` must match."""
    src, own = source_state(ref), policy.state_dict()
    loaded = [k for k, v in own.items() if k in src and src[k].shape == v.shape]
    missing = [k for k in own if _prefixed(k, prefixes) and k not in loaded]
    if missing or not loaded:
        raise ValueError(f"trainer.init_from={ref}: {len(missing)} weights under {list(prefixes)} are absent or"
                         f" differently shaped there (e.g. {missing[:5]}); is it the matching stage-1 run?"
                         if missing else f"trainer.init_from={ref}: no weight of this policy is in it")
    policy.load_state_dict({k: src[k] for k in loaded}, strict=False)
    return loaded


def freeze(policy: WAMPolicy, prefixes) -> None:
    """Stop gradients into parameters under ``prefixes`` (a typo raises instead of freezing nothing)."""
    for prefix in prefixes:
        params = [p for n, p in policy.named_parameters() if _prefixed(n, [prefix])]
        if not params:
            raise ValueError(f"trainer.freeze: no parameter of the policy starts with {prefix!r}")
        for p in params:
            p.requires_grad_(False)


class SaveLast(L.Callback):
    """Write ``last.ckpt`` when training stops (max steps, max time or interrupt), so runs always resume."""

    def __init__(self, path: Path):
        self.path = path

    def on_train_end(self, trainer, pl_module):
        trainer.save_checkpoint(self.path)


class _AppendingWriter(ExperimentWriter):
    """Lightning's CSV writer, appending to an existing ``metrics.csv`` (whose rows it would delete)."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as f:
                self.metrics_keys = next(csv.reader(f), [])


class CSVLogger(L.pytorch.loggers.CSVLogger):
    """``RUN/metrics.csv``, which a resumed run extends."""

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flat(v, f"{prefix}{k}.") if isinstance(v, Mapping) else {f"{prefix}{k}": v})
    return out


def _identity(hparams: Mapping[str, Any]) -> dict[str, Any]:
    """What a resumed run shares with its checkpoint: the policy, the frozen parameters, the data's facts."""
    recipe, info = hparams.get("recipe") or {}, dict(hparams.get("info") or {})
    info.pop("stats", None)
    freeze = (recipe.get("trainer") or {}).get("freeze")
    return _flat({"policy": recipe.get("policy") or {}, "trainer": {"freeze": freeze}, "info": info})


def resume_point(run: Path, resume: bool, hparams: Mapping[str, Any]) -> Path | None:
    """``run``'s ``last.ckpt`` if this training continues it, ``None`` for a new run; raises
    :class:`OutputError`, before anything is written, if ``run`` holds a run it would not continue."""
    last = run / "checkpoints" / "last.ckpt"
    fresh = f"use another --out, or start fresh with `rm -r {run}`"
    if not last.is_file():
        if (run / "metrics.csv").is_file():
            raise OutputError(f"{run} holds the logs of a run with no checkpoint to resume; {fresh}")
        return None
    if not resume:
        raise OutputError(f"{run} holds a run and trainer.resume is false; {fresh}")
    there, here = _identity(load_weights_only(last).get("hyper_parameters") or {}), _identity(hparams)
    changed = [f"{k}: {there.get(k)} there, {here.get(k)} here" for k in sorted(set(there) | set(here))
               if there.get(k) != here.get(k)]
    if changed:
        raise OutputError(f"{run} holds a run of another configuration ({'; '.join(changed[:3])}"
                          f"{'; ...' if len(changed) > 3 else ''}); {fresh}")
    return last


def make_datamodule(recipe: Recipe):
    cfg = dict(recipe.data)
    name = cfg.pop("name")
    entry = get_plugins().registry.get("data", name)
    params = entry.parameters()
    for key, value in (("batch_size", recipe.trainer.batch_size), ("num_workers", recipe.trainer.num_workers),
                       ("seed", recipe.trainer.seed)):
        if key in params and key not in cfg:
            cfg[key] = value
    return get_plugins().registry.create("data", name, **cfg)


def run_dir(recipe: Recipe, out_dir: str | os.PathLike | None = None) -> Path:
    return Path(out_dir or recipe.trainer.out_dir) / recipe.name


def train(recipe: Recipe, out_dir: str | os.PathLike | None = None, callbacks: list | None = None) -> Path:
    """Train ``recipe``; returns the run folder (resumes from its ``last.ckpt`` if present, see module doc)."""
    spec = recipe.trainer
    if spec.threads:
        torch.set_num_threads(spec.threads)
    L.seed_everything(spec.seed, workers=True, verbose=False)
    run = run_dir(recipe, out_dir)
    dm = make_datamodule(recipe)
    hparams = {"recipe": recipe.to_dict(), "info": dm.info().to_dict(with_stats=True)}
    resume = resume_point(run, spec.resume, hparams)
    module = WAMModule(**hparams)
    ckpt_dir = run / "checkpoints"
    cbs = [L.pytorch.callbacks.ModelCheckpoint(dirpath=ckpt_dir, filename="step={step}", auto_insert_metric_name=False,
                                               every_n_train_steps=spec.ckpt_every, save_top_k=-1, save_last=True),
           L.pytorch.callbacks.LearningRateMonitor(logging_interval="step"), SaveLast(ckpt_dir / "last.ckpt")]
    if spec.ema:
        cbs.append(EMA(spec.ema))
    if spec.progress:
        cbs.append(L.pytorch.callbacks.RichProgressBar(leave=True))
    loggers = [CSVLogger(run, name="", version=""),
               L.pytorch.loggers.TensorBoardLogger(run, name="tb", version="", default_hp_metric=False)]
    strategy: Any = spec.strategy
    if strategy == "ddp" and spec.accelerator == "cpu":
        strategy = L.pytorch.strategies.DDPStrategy(process_group_backend="gloo")
    trainer = L.Trainer(max_steps=spec.max_steps, max_time={"minutes": spec.max_minutes} if spec.max_minutes else None,
                        accelerator=spec.accelerator, devices=spec.devices, num_nodes=spec.num_nodes,
                        strategy=strategy, precision=spec.precision, gradient_clip_val=spec.grad_clip or None,
                        log_every_n_steps=spec.log_every, default_root_dir=run, callbacks=cbs + list(callbacks or []),
                        logger=loggers, enable_progress_bar=spec.progress, enable_model_summary=False,
                        use_distributed_sampler=True)
    trainer.fit(module, datamodule=dm, ckpt_path=resume, weights_only=True)
    return run


def load_checkpoint(path: str | os.PathLike) -> WAMPolicy:
    """Rebuild the policy of a Lightning checkpoint written by :func:`train` (strict), with the weights'
    moving average where the run kept one (``trainer.ema``)."""
    ckpt = load_weights_only(path)
    hp = ckpt.get("hyper_parameters")
    if not hp or "recipe" not in hp or "info" not in hp:
        raise ValueError(f"{path} is not a wamzoo training checkpoint (no recipe/info hyper-parameters)")
    policy = WAMPolicy.from_config(hp["recipe"]["policy"], DataInfo.from_dict(hp["info"]))
    policy.config["recipe"] = hp["recipe"]
    state = {k[len("policy."):]: v for k, v in averaged(ckpt).items() if k.startswith("policy.")}
    policy.load_state_dict(state, strict=True)
    return policy.eval()
