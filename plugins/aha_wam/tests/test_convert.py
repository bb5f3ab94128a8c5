"""Converter of the released AHA-WAM checkpoint (HF ``SereneC/AHA-WAM-RoboTwin2.0``).

A small ``robotwin_ahawam.pt`` is written here with the release's key names and layouts (read off the
public code, fork Silvernoon/AHA-WAM at its first commit: ``AHAWAMChunkBase.save_checkpoint``,
``MultiQueryChunkObsEncoder`` and ``action_obs_visual_proj`` in ``ahawam_chunk_base.py``,
``LayerwiseChunkKVCacheEditor`` and ``action_branch_embedding`` in ``mot.py``; the experts are
Fast-WAM's DiffSynth blocks) with a ``dataset_stats.json`` of its ``LinearNormalizer``, put in a
temporary Hugging Face cache and loaded by name with the Hub offline, with a tiny per-frame Wan VAE.
"""

import json
import pickle

import pytest
import torch

import wamzoo
from wamzoo.batch import Batch
from wamzoo.errors import LoadError
from wamzoo.testing import hub_cache, upstream_wan_block

REPO, NAME = "SereneC/AHA-WAM-RoboTwin2.0", "aha-wam/robotwin"
CKPT, STATS = "robotwin_ahawam.pt", "dataset_stats.json"
VAE = {"name": "wan-vae", "per_frame": True,
       "config": {"base_dim": 8, "z_dim": 4, "dim_mult": [1, 2], "num_res_blocks": 1, "temperal_downsample": [True],
                  "latents_mean": [0.1, -0.2, 0.3, 0.0], "latents_std": [0.5, 2.0, 1.0, 1.5]}}
# tiny sizes; head_dim 12 splits RoPE channels (4, 4, 4) in the code and in wamzoo alike
Z = dict(c=4, d=24, ffn=32, heads=2, hd=12, layers=2, text=16, da=12, ffn_a=20, a=3, s=4, q=4)
# four chunks of 2 steps, offsets up to 1, 2 history frames; three 8 x 8 cameras on a 12 x 16 canvas
TINY = {"codec": VAE, "num_heads": Z["heads"], "chunk_size": 2, "num_chunks": 4, "max_offset": 1, "history": 2,
        "steps": 2, "camera_size": [8, 8], "canvas": [12, 16]}


# -- the release, as the code writes it ---------------------------------------------------------
def _seq(r, shapes):
    """An ``nn.Sequential`` state dict: ``{index: (out, in)}`` (``in`` None: a LayerNorm of width ``out``)."""
    p = {}
    for i, (out, inp) in shapes.items():
        p.update({f"{i}.weight": 1 + r(out) if inp is None else r(out, inp), f"{i}.bias": r(out)})
    return p


def _embeddings(r, dim):
    return {"text_embedding.0.weight": r(dim, Z["text"]), "text_embedding.0.bias": r(dim),
            "text_embedding.2.weight": r(dim, dim), "text_embedding.2.bias": r(dim),
            "time_embedding.0.weight": r(dim, 256), "time_embedding.0.bias": r(dim),
            "time_embedding.2.weight": r(dim, dim), "time_embedding.2.bias": r(dim),
            "time_projection.1.weight": r(6 * dim, dim), "time_projection.1.bias": r(6 * dim)}


def release_payload(seed=0, dtype=torch.bfloat16, branch=True):
    """What ``AHAWAMChunkBase.save_checkpoint`` writes: ``MoT.state_dict()`` (the two experts, the
    layerwise K/V editor, the branch embedding) and the state dicts of the other trained modules."""
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g) * 0.3  # noqa: E731
    d, da, t, attn = Z["d"], Z["da"], Z["text"], Z["heads"] * Z["hd"]
    mot = {"mixtures.video.patch_embedding.weight": r(d, Z["c"], 1, 2, 2), "mixtures.video.patch_embedding.bias": r(d),
           "mixtures.video.head.head.weight": r(4 * Z["c"], d), "mixtures.video.head.head.bias": r(4 * Z["c"]),
           "mixtures.video.head.modulation": r(1, 2, d),
           "mixtures.action.action_encoder.weight": r(da, Z["a"]), "mixtures.action.action_encoder.bias": r(da),
           "mixtures.action.head.weight": r(Z["a"], da), "mixtures.action.head.bias": r(Z["a"])}
    for expert, dim, ffn in (("video", d, Z["ffn"]), ("action", da, Z["ffn_a"])):
        mot.update({f"mixtures.{expert}.{k}": v for k, v in _embeddings(r, dim).items()})
        for i in range(Z["layers"]):
            mot.update({f"mixtures.{expert}.blocks.{i}.{k}": v for k, v in upstream_wan_block(r, dim, ffn, attn).items()})
    for i in range(Z["layers"]):  # LayerwiseChunkKVCacheEditor (its zero-initialised last layer trained)
        mot.update({f"chunk_kv_cache_editor.layer_query_proj.{i}.{k}": v
                    for k, v in _seq(r, {0: (t, None), 1: (attn, t)}).items()})
        mot.update({f"chunk_kv_cache_editor.layer_delta_proj.{i}.{k}": v
                    for k, v in _seq(r, {0: (attn, None), 1: (attn, attn), 3: (2 * attn, attn)}).items()})
    mot["chunk_kv_cache_editor.delta_gate"] = -4 + r(Z["layers"])
    if branch:
        mot["action_branch_embedding"] = r(2, da)
    mlp = {0: (t, None), 1: (t, t), 3: (t, t)}
    queries = {"base_queries": r(1, 1, Z["q"], t), **{f"obs_key_proj.{k}": v for k, v in
                                                      _seq(r, {0: (t, None), 1: (t, t)}).items()},
               **{f"obs_value_proj.{k}": v for k, v in _seq(r, mlp).items()},
               **{f"query_proj.{k}": v for k, v in _seq(r, mlp).items()}}
    cast = lambda sd: {k: v.to(dtype) for k, v in sd.items()}  # noqa: E731
    return {"mot": cast(mot), "proprio_encoder": cast({"weight": r(t, Z["s"]), "bias": r(t)}),
            "action_obs_visual_proj": cast(_seq(r, {0: (Z["c"], None), 1: (t, Z["c"]), 3: (t, t)})),
            "chunk_obs_query_encoder": cast(queries), "step": 30000, "torch_dtype": "torch.bfloat16"}


def upstream_stats(seed=1):
    """The code's ``dataset_stats.json`` (``get_dataset_stats``): global and stepwise statistics."""
    g = torch.Generator().manual_seed(seed)

    def entry(n):
        lo = torch.randn(n, generator=g) - 2
        hi = lo + torch.rand(n, generator=g) * 3 + 0.5
        s = dict(min=lo, max=hi, mean=(lo + hi) / 2, std=(hi - lo) / 4 + 0.05, q01=lo + 0.1, q99=hi - 0.1)
        out = {f"global_{k}": v.tolist() for k, v in s.items()}
        out.update({f"stepwise_{k}": [v.tolist()] * 4 for k, v in s.items()})
        return out

    return {"state": {"default": entry(Z["s"])}, "action": {"default": entry(Z["a"])}, "num_episodes": 10,
            "num_transition": 2000}


def write_release(folder, payload=None, stats=None):
    folder.mkdir(parents=True, exist_ok=True)
    if isinstance(payload, bytes):
        (folder / CKPT).write_bytes(payload)
    else:
        torch.save(release_payload() if payload is None else payload, folder / CKPT)
    (folder / STATS).write_text(json.dumps(upstream_stats() if stats is None else stats))
    return {CKPT: folder / CKPT, STATS: folder / STATS}


@pytest.fixture
def offline(monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def _load(tmp_path, payload=None, stats=None, **kw):
    """Write the release, cache it as a Hub download and load it by name, offline."""
    cache = tmp_path / "cache"
    hub_cache(cache, REPO, write_release(tmp_path / "src", payload, stats))
    torch.manual_seed(0)  # the tiny VAE is built from a config (random); real use loads the Wan2.2 VAE
    return wamzoo.load(NAME, cache_dir=str(cache), **{**TINY, **kw})


@pytest.fixture
def release(tmp_path, offline):
    return _load(tmp_path)


def _obs(policy, B=2, seed=3):
    """The current frame and the history frames before it, of every camera."""
    g = torch.Generator().manual_seed(seed)
    info = policy.info
    return Batch(rgb=torch.rand(B, info.n_obs, info.num_views, 3, info.height, info.width, generator=g),
                 state=torch.randn(B, info.state_dim, generator=g),
                 instruction=torch.randn(B, 5, Z["text"], generator=g),
                 instruction_mask=torch.ones(B, 5, dtype=torch.bool), n_obs=info.n_obs)


# -- the release -----------------------------------------------------------------------------
def test_every_upstream_key_fills_every_parameter(release):
    payload = release_payload()
    sd = release.state_dict()
    n_upstream = sum(len(payload[k]) for k in ("mot", "proprio_encoder", "action_obs_visual_proj",
                                               "chunk_obs_query_encoder"))
    n_filled = sum(1 for k in sd if not k.startswith(("codec.", "normalizer.")))
    assert n_filled == n_upstream - 1  # the branch embedding is folded into a bias
    up = release.config["upstream"]
    assert up["format"] == "aha-wam.release" and up["step"] == 30000 and "mot.action_branch_embedding" in up["dropped"]
    assert "per_frame_encoding" not in up["not_applied"]
    assert release.codec.per_frame and release.codec.temporal_factor == 1 and release.codec.layout == "robotwin"


def test_mapped_tensors_equal_their_sources(release):
    up = release_payload()
    mot = {k: v.float() for k, v in up["mot"].items()}
    sd = release.state_dict()
    queries = up["chunk_obs_query_encoder"]["base_queries"].float()
    assert torch.equal(sd["action_expert.ovcr.base_queries"], queries.reshape(Z["q"], Z["text"]))
    editor = "chunk_kv_cache_editor."
    assert torch.equal(sd["action_expert.ovcr.route.1.1.weight"], mot[editor + "layer_query_proj.1.1.weight"])
    assert torch.equal(sd["action_expert.ovcr.delta.0.3.bias"], mot[editor + "layer_delta_proj.0.3.bias"])
    assert torch.equal(sd["action_expert.ovcr.gate"], mot[editor + "delta_gate"])
    assert torch.equal(sd["action_expert.ovcr.visual.3.weight"], up["action_obs_visual_proj"]["3.weight"].float())
    assert torch.equal(sd["action_expert.ovcr.value_proj.0.weight"],
                       up["chunk_obs_query_encoder"]["obs_value_proj.0.weight"].float())
    assert torch.equal(sd["action_expert.proprio.weight"], up["proprio_encoder"]["weight"].float())
    assert torch.equal(sd["world_model.dit.blocks.1.norm2.weight"], mot["mixtures.video.blocks.1.norm3.weight"])
    assert torch.equal(sd["action_expert.dit.blocks.0.attn1.to_q.weight"],
                       mot["mixtures.action.blocks.0.self_attn.q.weight"])


def test_branch_embedding_row_1_is_folded_into_the_encoder_bias(release, tmp_path):
    mot = {k: v.float() for k, v in release_payload()["mot"].items()}
    w, b, row = (mot["mixtures.action.action_encoder.weight"], mot["mixtures.action.action_encoder.bias"],
                 mot["action_branch_embedding"][1])
    assert torch.equal(release.state_dict()["action_expert.dit.action_encoder.bias"], b + row)
    a = torch.randn(5, Z["a"])  # the code: action_encoder(a) + action_branch_embedding[1]
    torch.testing.assert_close(release.action_expert.dit.action_encoder(a), torch.nn.functional.linear(a, w, b) + row)
    plain = _load(tmp_path / "plain", release_payload(branch=False))  # absent: the code's zero initialisation
    assert torch.equal(plain.state_dict()["action_expert.dit.action_encoder.bias"], b)
    assert plain.config["upstream"]["folded"]["action_branch_embedding"].startswith("absent")


def test_z_score_statistics_are_carried(release):
    stats = upstream_stats()
    assert release.normalizer.modes == {"action": "mean_std", "state": "mean_std"}
    for group in ("state", "action"):
        entry = stats[group]["default"]
        mean, std = torch.tensor(entry["global_mean"]), torch.tensor(entry["global_std"])
        x = mean + std * torch.randn(16, len(mean), generator=torch.Generator().manual_seed(2))
        torch.testing.assert_close(release.normalizer.normalize(group, x), (x - mean) / (std + 1e-8))
        torch.testing.assert_close(release.normalizer.unnormalize(group, release.normalizer.normalize(group, x)), x)


def test_release_predicts_a_chunk(release):
    info = release.info
    assert info.cameras == ["cam_high", "cam_left_wrist", "cam_right_wrist"] and info.n_obs == 3
    assert (info.action_dim, info.state_dim, info.horizon) == (Z["a"], Z["s"], 4 * 2 + 1)
    ex = release.action_expert
    assert (ex.chunk_size, ex.num_chunks, ex.max_offset, ex.infer_branch) == (2, 4, 1, "prior")
    obs = _obs(release)
    chunks = [release.predict_action(obs, generator=torch.Generator().manual_seed(i)) for i in range(3)]
    # three observed frames -> three latents (per-frame VAE), as the planner requires
    assert all(c.shape == (2, 2, Z["a"]) and torch.isfinite(c).all() for c in chunks)


# -- errors ----------------------------------------------------------------------------------
def test_leftover_unknown_key_is_listed(tmp_path, offline):
    payload = release_payload()
    payload["mot"]["chunk_kv_cache_editor.extra_proj.weight"] = torch.zeros(3)
    payload["ema"] = {"w": torch.zeros(1)}
    with pytest.raises(LoadError) as err:
        _load(tmp_path, payload)
    msg = str(err.value)
    assert "2 upstream keys not consumed" in msg and "mot.chunk_kv_cache_editor.extra_proj.weight" in msg
    assert "ema.w" in msg and "not filled" not in msg


def test_missing_file_and_missing_queries(tmp_path, offline):
    from wamzoo.hub import convert

    files = write_release(tmp_path / "src")
    with pytest.raises(LoadError, match="needs the file 'dataset_stats.json'"):
        convert("aha-wam.release", {CKPT: files[CKPT]}, checkpoint=CKPT, stats_file=STATS, norm_mode="z-score",
                cameras=["cam_high"], camera_size=[8, 8], codec=VAE, num_heads=2)
    payload = release_payload()
    del payload["chunk_obs_query_encoder"]["base_queries"]
    with pytest.raises(LoadError, match="OVCR's queries are missing"):
        _load(tmp_path / "q", payload)


class Evil:
    """Not a tensor: a weights-only load must refuse it."""


def test_non_weights_only_pickle_is_refused(tmp_path, offline):
    with pytest.raises(LoadError, match="not a weights-only pickle"):
        _load(tmp_path, pickle.dumps({"mot": {}, "hook": Evil()}, protocol=2))


def test_wrong_shapes_are_refused(tmp_path, offline):
    payload = release_payload()
    payload["action_obs_visual_proj"]["1.weight"] = torch.zeros(Z["text"], Z["c"] + 1)
    with pytest.raises(LoadError) as err:
        _load(tmp_path, payload)
    assert "action_expert.ovcr.visual.1.weight" in str(err.value)
    payload = release_payload()
    payload["mot"]["action_branch_embedding"] = torch.zeros(2, Z["da"] + 1)
    with pytest.raises(LoadError, match="the release's is \\[2, action width\\]"):
        _load(tmp_path / "b", payload)
    with pytest.raises(LoadError, match="cannot be represented"):  # head_dim 4: RoPE split (2, 1, 1) vs (4, 0, 0)
        _load(tmp_path / "h", num_heads=6)


def test_temporally_compressing_codec_is_refused(tmp_path, offline):
    with pytest.raises(LoadError, match="one latent per frame"):
        _load(tmp_path, codec={**VAE, "per_frame": False})


def test_the_release_folder_loads_by_path(tmp_path, offline):
    """``wamzoo.load(folder)`` finds the release's files and converts them with the registered options."""
    by_name = _load(tmp_path)
    torch.manual_seed(0)
    by_path = wamzoo.load(str(tmp_path / "src"), **TINY)
    assert by_path.config["upstream"] == by_name.config["upstream"]
    for key, value in by_name.state_dict().items():
        assert torch.equal(by_path.state_dict()[key], value), key
