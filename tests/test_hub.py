"""Hub I/O: model cards, pretrained names from an offline cache, revisions, push_to_hub, bad inputs."""

import json
import os
import pickle
import subprocess
import sys
import types

import pytest
import torch

import wamzoo

try:  # huggingface_hub >= 1.x talks HTTP through httpx (2.x: the httpx2 fork)
    import httpx2 as httpx
except ImportError:  # pragma: no cover
    import httpx
from wamzoo.errors import LoadError
from wamzoo.hookspecs import hookimpl
from wamzoo.hub import Pretrained, load_weights_only
from wamzoo.plugins import reset, use_plugins
from wamzoo.policy import WAMPolicy
from wamzoo.recipes import compose
from wamzoo.testing import hub_cache
from wamzoo.training import make_datamodule

REPO = "wamzoo-test/tiny-mot"


@pytest.fixture(scope="module")
def policy_and_obs():
    recipe = compose("tiny-mot")
    dm = make_datamodule(recipe)
    torch.manual_seed(0)
    policy = WAMPolicy.from_config(recipe.policy, dm.info()).eval()
    policy.config["recipe"] = recipe.to_dict()
    return policy, next(iter(dm.train_dataloader())).observation()


@pytest.fixture
def named(tmp_path, monkeypatch):
    """Offline mode, and a plugin that registers the pretrained name ``test/tiny`` -> REPO."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    mod = types.SimpleNamespace()

    @hookimpl
    def register_pretrained(register):
        register(Pretrained(name="test/tiny", repo_id=REPO, description="tiny test policy"))

    mod.register_pretrained = register_pretrained
    use_plugins(("testhub", mod), entry_points=False)
    yield
    reset()


def actions(policy, obs):
    return policy.predict_action(obs, generator=torch.Generator().manual_seed(0))


RESULTS = {"suite": "mw-easy", "mean_success_rate": 0.5, "seeds": [1000000, 1000001, 1000002, 1000003], "command": "wamzoo eval x --suite mw-easy",
           "tasks": {"reach-v3": {"success_rate": 0.25, "episodes": 4}, "drawer-close-v3": {"success_rate": 0.75,
                                                                                             "episodes": 4}}}


def test_card_has_metadata_results_and_components(policy_and_obs, tmp_path):
    from huggingface_hub import ModelCard

    policy, _ = policy_and_obs
    folder = policy.save_pretrained(tmp_path / "p", name="org/tiny", results=RESULTS)
    card = ModelCard.load(folder / "README.md")
    assert card.data.library_name == "wamzoo" and card.data.pipeline_tag == "robotics"
    assert "wamzoo" in card.data.tags and card.data.datasets == ["metaworld/mw-easy"]
    assert {r.dataset_config: r.metric_value for r in card.data.eval_results} == {"reach-v3": 0.25,
                                                                                 "drawer-close-v3": 0.75}
    text = card.text
    assert "`dit.video`" in text and "`mot`" in text and "| reach-v3 | 25% |\n| drawer-close-v3" in text
    assert "| drawer-close-v3 | 75% |\n| **mean** | **50%** |" in text and "seeds\n1000000..1000003, disjoint" in text
    assert 'wamzoo.load("org/tiny")' in text and "wamzoo eval x --suite mw-easy" in text
    assert "reproduce with `wamzoo train tiny-mot`. Budget: at most 50 steps on cpu, batch 8." in text
    assert json.loads((folder / "results.json").read_text())["mean_success_rate"] == 0.5
    assert "started from the weights of" not in text


def test_an_export_evaluates_by_default_the_way_its_results_were_measured(policy_and_obs, tmp_path):
    """Results measured with temporal ensembling make ensembling the export's evaluation default."""
    from wamzoo.loading import load_policy

    policy, _ = policy_and_obs
    plain = json.loads((policy.save_pretrained(tmp_path / "a") / "config.json").read_text())
    assert plain["recipe"] == json.loads(json.dumps(policy.config["recipe"]))
    folder = policy.save_pretrained(tmp_path / "b", results={**RESULTS, "replan": 8, "ensemble": 0.01, "frame_lag": 4})
    recipe_eval = load_policy(str(folder)).config["recipe"]["eval"]
    assert recipe_eval["ensemble"] == 0.01 and recipe_eval["replan"] == 8 and "frame_lag" not in recipe_eval
    assert (policy.config["recipe"].get("eval") or {}).get("ensemble") is None   # the policy itself is untouched


def test_card_of_a_second_stage_names_the_run_it_started_from(policy_and_obs):
    """A stage 2 (HarmoWAM's experts on a trained world model) cannot be reproduced by its own recipe alone."""
    import copy

    from wamzoo.cards import render_card

    policy, _ = policy_and_obs
    staged = copy.copy(policy)
    staged.config = {**policy.config, "recipe": {**policy.config["recipe"],
                                                 "trainer": {**policy.config["recipe"]["trainer"],
                                                             "init_from": "runs/my-stage1"}}}
    assert "Its training started from the weights of `runs/my-stage1`" in render_card(staged, "org/tiny")


def test_card_budget_of_a_data_parallel_run_counts_every_process():
    """A DDP run's recipe holds the batch of one process: the card says how many ran and the step's batch."""
    from wamzoo.cards import _budget

    trainer = {"max_minutes": 60, "max_steps": 20000, "threads": 1, "batch_size": 16, "devices": 2}
    assert _budget(trainer) == ("at most 60 minutes or 20000 steps on 2 data-parallel processes (1 CPU thread(s)"
                                " each), batch 16 per process (32 a step)")
    assert _budget({**trainer, "devices": 1}).endswith("on 1 CPU thread(s), batch 16")


def test_card_says_how_its_demonstrations_were_made(policy_and_obs):
    """The demonstrations' generator settings (the reach expert's aim, episodes past success) are on the card."""
    import copy

    from wamzoo.cards import render_card

    policy, _ = policy_and_obs
    made = copy.copy(policy)
    data = {"episodes": 50, "aim": "fingertips", "settle": 24, "cameras": ["front", "top"]}
    made.config = {**policy.config, "recipe": {**policy.config["recipe"], "data": data}}
    assert ("Data: 50 demonstrations per task by Meta-World's scripted experts, reach's aimed with the fingertips,"
            " each going on 24 steps past its first success; cameras front, top.") in render_card(made, "org/tiny")


def test_by_name_from_offline_cache_matches(policy_and_obs, tmp_path, named):
    policy, obs = policy_and_obs
    folder = policy.save_pretrained(tmp_path / "src")
    files = {f: folder / f for f in ("config.json", "model.safetensors", "stats.json")}
    hub_cache(tmp_path / "cache", REPO, files)
    loaded = wamzoo.load("test/tiny", cache_dir=str(tmp_path / "cache"))
    assert torch.equal(actions(loaded, obs), actions(policy, obs))
    loaded = WAMPolicy.from_pretrained(f"hf-hub:{REPO}", cache_dir=str(tmp_path / "cache"))
    assert torch.equal(actions(loaded, obs), actions(policy, obs))


def test_half_precision_folder_is_half_the_size_and_loads_as_float32(policy_and_obs, tmp_path):
    from safetensors.torch import load_file

    policy, obs = policy_and_obs
    full, half = policy.save_pretrained(tmp_path / "full"), policy.save_pretrained(tmp_path / "half", dtype="float16")
    params = dict(policy.named_parameters())
    stored = load_file(str(half / "model.safetensors"))
    assert all(stored[k].dtype == torch.float16 for k in params)
    assert (half / "model.safetensors").stat().st_size < 0.6 * (full / "model.safetensors").stat().st_size
    loaded = WAMPolicy.from_pretrained(str(half))
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    assert all(torch.equal(p, params[k].half().float()) for k, p in loaded.named_parameters())
    assert "stored here as float16" in (half / "README.md").read_text()
    assert "stored here as" not in (full / "README.md").read_text()
    with pytest.raises(ValueError, match="choose float32, float16 or bfloat16"):
        policy.save_pretrained(tmp_path / "bad", dtype="int8")
    assert not (tmp_path / "bad").exists()


def test_revision_pinning(policy_and_obs, tmp_path, named):
    policy, obs = policy_and_obs
    folder = policy.save_pretrained(tmp_path / "src")
    files = {f: folder / f for f in ("config.json", "model.safetensors", "stats.json")}
    hub_cache(tmp_path / "cache", REPO, files, revision="v1")
    with pytest.raises(LoadError, match="not in the Hugging Face cache"):
        WAMPolicy.from_pretrained(REPO, cache_dir=str(tmp_path / "cache"))  # main is not cached
    loaded = WAMPolicy.from_pretrained(REPO, revision="v1", cache_dir=str(tmp_path / "cache"))
    assert torch.equal(actions(loaded, obs), actions(policy, obs))


def test_fresh_process_offline_load(policy_and_obs, tmp_path):
    """A new process with HF_HUB_OFFLINE=1 and an empty-but-for-this-repo cache loads by name."""
    policy, obs = policy_and_obs
    folder = policy.save_pretrained(tmp_path / "src")
    hub_cache(tmp_path / "cache", REPO, {f: folder / f for f in ("config.json", "model.safetensors", "stats.json")})
    torch.save({"obs": obs.rgb, "state": obs.state, "task": obs.task_id, "a": actions(policy, obs)},
               tmp_path / "io.pt")
    script = f"""
import types, torch, wamzoo
from wamzoo.batch import Batch
from wamzoo.hookspecs import hookimpl
from wamzoo.hub import Pretrained
from wamzoo.plugins import use_plugins
m = types.SimpleNamespace()
m.register_pretrained = hookimpl(lambda register: register(Pretrained(name="test/tiny", repo_id="{REPO}")))
use_plugins(("t", m), entry_points=False)
io = torch.load(r"{tmp_path / 'io.pt'}")
p = wamzoo.load("test/tiny")
a = p.predict_action(Batch(rgb=io["obs"], state=io["state"], task_id=io["task"]),
                     generator=torch.Generator().manual_seed(0))
assert torch.equal(a, io["a"]), (a - io["a"]).abs().max()
print("OK")
"""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path / "cache"), "HF_HOME": str(tmp_path)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0 and "OK" in proc.stdout, proc.stderr[-3000:]


def test_bad_names_and_files(policy_and_obs, tmp_path, named):
    with pytest.raises(KeyError, match="Did you mean: test.tiny"):
        wamzoo.load("test/tiyn")
    policy, _ = policy_and_obs
    folder = policy.save_pretrained(tmp_path / "src")
    hub_cache(tmp_path / "cache", REPO, {f: folder / f for f in ("config.json", "model.safetensors")})
    with pytest.raises(LoadError, match="stats.json is not in the Hugging Face cache"):
        wamzoo.load("test/tiny", cache_dir=str(tmp_path / "cache"))


def test_push_to_hub_uploads_the_native_files(policy_and_obs, monkeypatch):
    """push_to_hub against a mocked HTTP transport: the commit carries the four files."""
    import huggingface_hub
    from huggingface_hub import constants

    policy, _ = policy_and_obs
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        path = request.url.path
        if path.endswith("/api/repos/create"):
            return httpx.Response(200, json={"url": f"https://huggingface.co/{REPO}", "name": REPO})
        if path.endswith("/api/validate-yaml"):  # the card's metadata is validated before the commit
            return httpx.Response(200, json={})
        if "/preupload/" in path:
            files = json.loads(request.content)["files"]
            return httpx.Response(200, json={"files": [{"path": f["path"], "uploadMode": "regular",
                                                        "shouldIgnore": False} for f in files]})
        if "/commit/" in path:
            return httpx.Response(200, json={"commitUrl": f"https://huggingface.co/{REPO}/commit/abc",
                                             "commitOid": "a" * 40, "success": True})
        return httpx.Response(404, json={"error": f"unexpected {request.method} {path}"})

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    huggingface_hub.set_client_factory(lambda: httpx.Client(transport=httpx.MockTransport(handler)))
    try:
        info = policy.push_to_hub(REPO, results=RESULTS, token="hf_test")
    finally:
        huggingface_hub.set_client_factory(httpx.Client)
        huggingface_hub.close_session()
    assert info.oid == "a" * 40
    commit = next(r for r in seen if "/commit/" in r.url.path)
    lines = [json.loads(line) for line in commit.content.decode().splitlines()]
    uploaded = {line["value"]["path"] for line in lines if line["key"] == "file"}
    assert uploaded == {"config.json", "model.safetensors", "stats.json", "README.md", "results.json"}
    assert commit.headers["authorization"] == "Bearer hf_test"


class NotWeights:
    pass


def test_upstream_pickles_are_weights_only(tmp_path):
    good = tmp_path / "good.pt"
    torch.save({"w": torch.ones(2)}, good)
    assert torch.equal(load_weights_only(good)["w"], torch.ones(2))
    bad = tmp_path / "bad.pt"
    with open(bad, "wb") as f:
        pickle.dump({"w": NotWeights()}, f)
    with pytest.raises(LoadError, match="not a weights-only pickle"):
        load_weights_only(bad)
    (tmp_path / "trunc.pt").write_bytes(good.read_bytes()[:20])
    with pytest.raises(LoadError, match="cannot be read"):
        load_weights_only(tmp_path / "trunc.pt")


def embedded_names() -> list[str]:
    from wamzoo.plugins import get_plugins

    return [e.name for e in get_plugins().registry.entries(kind="pretrained") if e.target.repo_id.startswith("local:")]


def test_plugins_ship_embedded_policies():
    assert embedded_names(), "no plugin ships a pretrained policy (Pretrained(repo_id='local:<folder>'))"


@pytest.mark.parametrize("name", embedded_names())
def test_embedded_policy_is_small_loads_offline_and_acts(name, monkeypatch):
    from huggingface_hub import ModelCard, constants

    from wamzoo.bench import dummy_batch
    from wamzoo.hub import download, resolve

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    files = download(resolve(name))
    folder = next(iter(files.values())).parent
    assert sum(f.stat().st_size for f in folder.iterdir()) <= 8_000_000
    results = json.loads((folder / "results.json").read_text())
    card = ModelCard.load(folder / "README.md")
    assert {r.dataset_config: r.metric_value for r in card.data.eval_results} == {
        t: v["success_rate"] for t, v in results["tasks"].items()}
    policy = wamzoo.load(name)
    chunk = policy.predict_action(dummy_batch(policy.info, 2).observation(), generator=torch.Generator().manual_seed(0))
    B, n, A = chunk.shape  # n: the horizon, or one executor chunk of it (AHA-WAM)
    assert (B, A) == (2, policy.info.action_dim) and 1 <= n <= policy.info.horizon and torch.isfinite(chunk).all()


def test_a_folder_that_wraps_a_policy_in_its_wamzoo_subfolder_loads_as_it(policy_and_obs, tmp_path):
    """A LeRobot checkpoint of ``--policy.type=wamzoo`` keeps the wamzoo policy in ``wamzoo/`` beside LeRobot's
    own files: ``wamzoo.load`` reads the checkpoint folder itself."""
    policy, obs = policy_and_obs
    policy.save_pretrained(tmp_path / "pretrained_model" / "wamzoo")
    (tmp_path / "pretrained_model" / "config.json").write_text(json.dumps({"type": "wamzoo"}))  # LeRobot's
    loaded = wamzoo.load(str(tmp_path / "pretrained_model"))
    assert torch.equal(loaded.predict_action(obs, seed=1), policy.predict_action(obs, seed=1))
    with pytest.raises(LoadError, match="wamzoo/"):
        wamzoo.load(str(tmp_path))  # nothing here, nor in a wamzoo/ subfolder: the message names the layout
