"""Pre- and post-processors of ``--policy.type=wamzoo``: LeRobot's default pipelines (rename, batch, device,
normalise; unnormalise, to CPU). The normaliser steps follow ``normalization_mapping``, identity by default:
a wamzoo policy normalises state and actions itself, with its recipe's modes and the statistics saved in its
weights, so the same checkpoint acts identically in LeRobot and in wamzoo."""

from __future__ import annotations

from typing import Any

import torch

from lerobot.processor import PolicyAction, PolicyProcessorPipeline, make_default_pre_post_processors
from lerobot_policy_wamzoo.configuration_wamzoo import WamzooConfig


def make_wamzoo_pre_post_processors(
    config: WamzooConfig, dataset_stats: dict[str, dict[str, torch.Tensor]] | None = None,
) -> tuple[PolicyProcessorPipeline[dict[str, Any], dict[str, Any]], PolicyProcessorPipeline[PolicyAction, PolicyAction]]:
    """LeRobot's default pipeline pair for a wamzoo policy (see module doc)."""
    return make_default_pre_post_processors(config, dataset_stats, normalizer_device=config.device)
