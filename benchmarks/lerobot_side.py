"""LeRobot's side of ``benchmarks/lerobot_latency.py``; runs in a Python 3.12 environment with LeRobot 0.6.x, never
in wamzoo's (that script calls it)::

    python benchmarks/lerobot_side.py build CONFIG OUT   # a FastWAM built and saved by LeRobot, with its chunk
    python benchmarks/lerobot_side.py serve OUT THREADS  # one timed call per line "call" on stdin

``build`` makes LeRobot's ``FastWAMPolicy`` at ``CONFIG`` through the fixture script's ``build``
(``plugins/fast_wam/tests/fixtures/make_lerobot_fastwam.py``: random weights, a tiny random Wan2.2-layout
VAE, no download), saves it with LeRobot's ``save_pretrained`` (policy, processors, VAE in ``vae/``), reloads
it with LeRobot's loaders and writes ``reference.safetensors``: one observation (two cameras, state,
context) and the chunk LeRobot's ``preprocessor -> predict_action_chunk -> postprocessor`` returns for it.
``serve`` reloads the folder and, per ``call``, runs that same path on that observation and prints the
seconds it took as a line ``@SECONDS`` (``perf_counter`` around the call, after ``torch.set_num_threads(THREADS)``).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins" / "fast_wam" / "tests" / "fixtures"))
import make_lerobot_fastwam as fixture  # noqa: E402

#: ``tiny``: the fixture's sizes. ``paper``: the papers' proportions at a small width, as
#: ``benchmarks/report.paper_proportions(128)``: the video expert 3x the action expert's width with FFN 14/3
#: of it, the action FFN 4x, one attention of 64-wide heads, 128 video tokens per frame (two 128 px cameras
#: side by side: 8 x 16 tokens), 10 denoising steps.
CONFIGS = {"tiny": {},
           "paper": dict(video=384, video_ffn=1792, action=128, action_ffn=512, heads=6, head_dim=64, layers=2,
                         image_size=(128, 256), steps=10)}


def observation(image_size):
    g = torch.Generator().manual_seed(3)
    raw = {k: torch.rand(1, 3, image_size[0], image_size[1] // 2, generator=g) for k in fixture.CAMERAS}
    state = torch.randn(1, fixture.S, generator=g) * 2
    context = torch.randn(1, fixture.L, fixture.TEXT, generator=g)
    context[0, 5:] = 0
    return raw, state, context, torch.ones(1, fixture.L, dtype=torch.bool)


def load(folder: Path):
    from lerobot.policies.factory import make_pre_post_processors
    from lerobot.policies.fastwam import modeling_fastwam
    from lerobot.policies.fastwam.wan import WanVideoVAE38
    from diffusers import AutoencoderKLWan

    vae = AutoencoderKLWan.from_pretrained(str(folder / "vae")).eval()
    modeling_fastwam.load_pretrained_wan_vae = lambda *, torch_dtype, device: WanVideoVAE38(
        dtype=torch_dtype, device=device, pretrained=vae)
    modeling_fastwam.build_wan_tokenizer = lambda **_: None
    policy = modeling_fastwam.FastWAMPolicy.from_pretrained(folder, strict=True).eval()
    pre, post = make_pre_post_processors(policy.config, pretrained_path=str(folder))
    return policy, pre, post


def call(policy, pre, post, raw, state, context, mask):
    batch = pre({**raw, "observation.state": state})
    batch.update(context=context, context_mask=mask)
    with torch.no_grad():
        return post(policy.predict_action_chunk(batch))


def build(config: str, out: Path) -> None:
    from safetensors.torch import save_file

    sizes = CONFIGS[config]
    policy, pre, post, vae = fixture.build(**sizes)
    out.mkdir(parents=True, exist_ok=True)
    policy.save_pretrained(out)
    pre.save_pretrained(out)
    post.save_pretrained(out)
    vae.save_pretrained(out / "vae")
    raw, state, context, mask = observation(sizes.get("image_size", (32, 64)))
    action = call(*load(out), raw, state, context, mask)
    save_file({"rgb_front": raw[fixture.CAMERAS[0]], "rgb_wrist": raw[fixture.CAMERAS[1]], "state": state,
               "context": context, "context_mask": mask, "seed": torch.tensor([fixture.SEED]),
               "action": action.float().contiguous()}, str(out / "reference.safetensors"))


def serve(folder: Path, threads: int) -> None:
    from safetensors.torch import load_file

    torch.set_num_threads(threads)
    policy, pre, post = load(folder)
    ref = load_file(str(folder / "reference.safetensors"))
    raw = {fixture.CAMERAS[0]: ref["rgb_front"], fixture.CAMERAS[1]: ref["rgb_wrist"]}
    print("@ready", flush=True)  # protocol lines start with "@" (LeRobot prints to stdout too)
    for line in sys.stdin:
        if line.strip() != "call":
            break
        t0 = time.perf_counter()
        call(policy, pre, post, raw, ref["state"], ref["context"], ref["context_mask"])
        print(f"@{time.perf_counter() - t0:.6f}", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "build":
        build(sys.argv[2], Path(sys.argv[3]))
    else:
        serve(Path(sys.argv[2]), int(sys.argv[3]))
