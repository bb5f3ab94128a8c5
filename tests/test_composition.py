"""Declared capabilities: pairings that cannot work are refused when composed, naming both parts."""

import subprocess
import sys

import pytest

from wamzoo.composition import CompositionError, caps, check, problems
from wamzoo.errors import RecipeError, WamzooError
from wamzoo.recipes import compose


def test_an_invalid_pairing_is_refused_when_the_recipe_is_composed():
    with pytest.raises(WamzooError) as info:
        compose("x-wam-tiny", ["policy.coupling.name=aha-wam.mot"])
    msg = str(info.value)
    for words in ("aha-wam.mot", "x-wam.video", "x-wam.action", "frame-tokens", "chunk-executor",
                  "wamzoo list --compatible"):
        assert words in msg
    assert isinstance(info.value, CompositionError)


def test_the_cli_refuses_it_before_any_training_step(tmp_path):
    out = subprocess.run([sys.executable, "-m", "wamzoo.cli", "train", "fast-wam-tiny",
                          "policy.action_expert.name=aha-wam.executor", "--out", str(tmp_path)],
                         capture_output=True, text=True)
    assert out.returncode != 0
    assert "fast-wam.mot" in out.stdout + out.stderr and "chunk-executor" in out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    assert not any(tmp_path.iterdir())  # nothing was written


def test_a_policy_built_by_hand_is_checked_too():
    from wamzoo.testing import tiny_policy
    from wamzoo.policy import WAMPolicy
    from wamzoo_harmo_wam.gated import HarmoActionExpert

    policy, _ = tiny_policy("tiny-mot")
    expert = HarmoActionExpert(action_dim=4, horizon=8, latent_dim=32, context_dim=16)
    with pytest.raises(CompositionError, match="latent-reader|tokens"):
        WAMPolicy(policy.world_model, expert, policy.coupling, policy.scheduler, policy.codec, policy.context)


def test_a_plan_over_streams_nobody_produces_is_refused():
    from wamzoo.testing import tiny_policy
    from wamzoo.policy import WAMPolicy
    from wamzoo.schedulers import FlowMatchingScheduler

    policy, _ = tiny_policy("tiny-mot")
    with pytest.raises(CompositionError, match="depth"):
        WAMPolicy(policy.world_model, policy.action_expert, policy.coupling,
                  FlowMatchingScheduler(phases=[{"action": 2, "depth": 2}]), policy.codec, policy.context)


def test_problems_are_pairwise_and_declared():
    class WM:
        provides = caps("tokens", "video")

    class Expert:
        provides = caps("tokens")
        requires = {"world_model": caps("backbone")}

    assert problems({"world_model": WM, "action_expert": Expert}) == [
        "action_expert 'Expert' needs a world model that provides 'backbone' (lends its transformer blocks to an"
        " expert without one), but world_model 'WM' provides tokens, video"]
    WM.provides = caps("tokens", "video", "backbone")
    check({"world_model": WM, "action_expert": Expert})
    with pytest.raises(ValueError, match="unknown capabilities"):
        caps("telepathy")


def test_list_compatible_is_plain_when_piped():
    out = subprocess.run([sys.executable, "-m", "wamzoo.cli", "list", "--compatible", "aha-wam.mot"],
                         capture_output=True, text=True, check=True).stdout.splitlines()
    assert "world_model\taha-wam.planner" in out and "action_expert\taha-wam.executor" in out
    assert "world_model\tfast-wam.video" in out  # the planner's memory is the coupling's: any frame-token model plans
    assert not any("x-wam.video" in line or "x-wam.action" in line for line in out)  # X-WAM embeds video with depth
    bad = subprocess.run([sys.executable, "-m", "wamzoo.cli", "list", "--compatible", "aha-wam.mott"],
                         capture_output=True, text=True)
    assert bad.returncode != 0 and "aha-wam.mot" in bad.stdout + bad.stderr


def test_recipe_errors_stay_recipe_errors():
    with pytest.raises(RecipeError):
        compose("tiny-mot", ["policy.coupling.name=no-such-coupling"])


def test_contributings_worked_example_runs_in_a_policy():
    """CONTRIBUTING.md's action expert without a transformer, run as written inside a policy."""
    import re
    from pathlib import Path

    import torch
    from torch import nn

    from wamzoo.interfaces import ActionExpert, Stream
    from wamzoo.nn.masks import TokenGroup
    from wamzoo.nn.mot import TokenSet
    from wamzoo.nn.rope import rope_angles_1d
    from wamzoo.policy import WAMPolicy
    from wamzoo.testing import tiny_policy

    text = (Path(__file__).resolve().parents[1] / "CONTRIBUTING.md").read_text()
    code = re.search(r"```python\n(class StepTokens.*?)```", text, re.S).group(1)
    scope = dict(ActionExpert=ActionExpert, Stream=Stream, TokenGroup=TokenGroup, TokenSet=TokenSet, nn=nn,
                 torch=torch, caps=caps, rope_angles_1d=rope_angles_1d)
    exec(code, scope)  # noqa: S102 - the documentation's own example
    base, batch = tiny_policy("tiny-mot")
    expert = scope["StepTokens"](action_dim=4, horizon=8, dim=base.world_model.dit.dim)
    policy = WAMPolicy(base.world_model, expert, base.coupling, base.scheduler, base.codec, base.context,
                       base.normalizer, base.loss_weights, base.info)
    loss, logs = policy.compute_loss(batch)
    loss.backward()
    assert expert.inp.weight.grad is not None and "loss/action" in logs
    assert policy.predict_action(batch.observation()).shape == (8, 8, 4)
