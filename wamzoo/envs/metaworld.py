"""Meta-World v3 tasks as a gymnasium environment: multi-view RGB, metric depth, cameras, fresh layouts.

    env = MetaWorldEnv("reach-v3", cameras=("oblique", "top"), height=64, width=64)
    obs, info = env.reset(seed=0)          # a fresh random object/goal layout drawn from the seed
    obs, reward, terminated, truncated, info = env.step(action)   # info["success"]: Meta-World's flag
    env.close()

Observation (a dict, arrays batch-contract shaped):

- ``rgb`` ``[V, 3, H, W]`` uint8 and ``depth`` ``[V, 1, H, W]`` float32: metric depth in metres along
  the optical axis (MuJoCo's non-linear depth buffer linearised with the model's
  ``znear * extent`` and ``zfar * extent`` as ``mujoco.Renderer`` does); pixels that see no geometry
  hold the far plane (about 113 m);
- ``state`` ``[4]``: proprioception only (hand xyz in metres, gripper opening in [0, 1]). Object
  and goal positions are never in ``state``; the scripted experts read them from
  ``info["privileged"]`` (Meta-World's 39-d observation), which a learned policy must not see;
- ``intrinsics`` ``[V, 3, 3]`` and ``extrinsics`` ``[V, 4, 4]`` (camera-to-world), per step so that
  moving cameras (``gripperPOV``) are exact.

Camera convention (OpenCV): camera axes x right, y down, z forward; pixel ``(u, v)`` = (column,
row) with pixel centres at integer coordinates, so ``fx = fy = H / (2 tan(fovy / 2))``,
``cx = (W - 1) / 2``, ``cy = (H - 1) / 2``. A pixel with depth ``d`` lifts to
``extrinsics @ [d (u - cx) / fx, d (v - cy) / fy, d, 1]`` (see :mod:`wamzoo.geometry`).

Cameras are named: any camera of the Meta-World model (``corner``, ``topview``, ``gripperPOV``,
...) or one of :data:`VIEWS`, free cameras aimed at the workspace and kept upright (the model's
``corner`` camera renders upside down). Default: ``oblique`` + ``top``, two views that together
fix every object's 3-D position.

Layouts: Meta-World's gymnasium entry points cycle through 50 fixed layouts per task, so new
seeds silently repeat training layouts. Here each ``reset(seed=s)`` unfreezes the task's random
vector and draws it from a generator seeded with ``s`` (Meta-World's ``seeded_rand_vec``): one
fresh layout per seed, the same one every time. Seeds are split by construction:
:data:`TRAIN_SEEDS` for demonstrations, :data:`EVAL_SEEDS` for evaluation; an environment built
for one split refuses the other's seeds (:class:`SeedError`).

Benchmark choices: the goal marker (the ``goal`` site, drawn only, no physics) is enlarged from
Meta-World's 2 cm to ``goal_radius`` = 4 cm, about 5 px at 64 px, so that reach, push and
pick-place goals are visible in both default views (``goal_radius=None`` keeps Meta-World's).
Rendering: one MuJoCo offscreen pass per view read as RGB and depth together, shadows,
reflections, skybox and multisampling off (about 5x faster than gymnasium's default rendering in
software GL; ``msaa`` turns multisampling back on).
"""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import atexit  # noqa: E402
import pickle  # noqa: E402
import warnings  # noqa: E402
from typing import Any, Callable, Sequence  # noqa: E402

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium import spaces  # noqa: E402
from metaworld.env_dict import ALL_V3_ENVIRONMENTS, MT10_V3  # noqa: E402
from metaworld.types import Task  # noqa: E402

from wamzoo.errors import UsageError, WamzooError  # noqa: E402
from wamzoo.geometry import intrinsics_from_fovy  # noqa: E402
from wamzoo.images import resize_frames  # noqa: E402

SUITES: dict[str, tuple[str, ...]] = {
    "mw-easy": ("reach-v3", "button-press-topdown-v3", "drawer-close-v3", "door-open-v3", "window-open-v3"),
    "mw-mt10": tuple(MT10_V3),
}
TRAIN_SEEDS = range(0, 1_000_000)
EVAL_SEEDS = range(1_000_000, 2**31 - 1)
SPLITS = {"train": TRAIN_SEEDS, "eval": EVAL_SEEDS}
STATE_DIM = ACTION_DIM = 4
FPS = 80.0  # control rate: MuJoCo timestep 2.5 ms x frame_skip 5
DEFAULT_CAMERAS = ("oblique", "top")
#: Free cameras aimed at the workspace (MuJoCo ``lookat`` / ``distance`` / ``azimuth`` / ``elevation``).
VIEWS: dict[str, dict[str, Any]] = {
    "oblique": dict(lookat=(0.0, 0.7, 0.1), distance=1.1, azimuth=-135.0, elevation=-35.0),
    "front": dict(lookat=(0.0, 0.7, 0.1), distance=1.1, azimuth=-90.0, elevation=-30.0),
    # ``front`` 1.3x closer, aimed 2 cm higher: the table's edge and floor (a third of ``front``) give way to the
    # workspace, and reach's goal covers 1.7x the pixels at the same size (results/reach.md)
    "front-close": dict(lookat=(0.0, 0.72, 0.12), distance=0.85, azimuth=-90.0, elevation=-30.0),
    "side": dict(lookat=(0.0, 0.7, 0.1), distance=1.3, azimuth=180.0, elevation=-25.0),
    "top": dict(lookat=(0.0, 0.72, 0.0), distance=1.15, azimuth=-90.0, elevation=-89.0),
}


class SeedError(WamzooError, ValueError):
    """A seed outside its split: training and evaluation layouts must never meet."""


def suite_tasks(suite: str | None = None, tasks: str | Sequence[str] | None = None,
                known: Sequence[str] | None = None) -> list[str]:
    """Task names of ``suite``, or the explicit ``tasks`` (a list or a comma-separated string); with
    ``known`` (a policy's tasks), each must be one of them."""
    if tasks:
        names = [t.strip() for t in tasks.split(",")] if isinstance(tasks, str) else list(tasks)
    elif suite in SUITES:
        names = list(SUITES[suite])
    else:
        raise UsageError(f"unknown suite {suite!r}; choose one of {', '.join(SUITES)} or pass tasks")
    if known is not None and any(t not in known for t in names):
        raise UsageError(f"the policy was not trained on {[t for t in names if t not in known]}; its tasks are"
                         f" {', '.join(known)}: choose among them with --tasks")
    unknown = [t for t in names if t not in ALL_V3_ENVIRONMENTS]
    if unknown:
        raise UsageError(f"unknown Meta-World task(s) {unknown}; v3 names look like 'reach-v3'"
                         f" (all: {', '.join(ALL_V3_ENVIRONMENTS)})")
    return names


def check_seeds(seeds: Sequence[int] | range, split: str) -> None:
    """Raise :class:`SeedError` unless every seed lies in ``split``'s range."""
    allowed = SPLITS[split]
    bad = [s for s in (seeds if not isinstance(seeds, range) else (seeds.start, seeds.stop - 1))
           if s not in allowed]
    if bad:
        raise SeedError(f"{split} seeds must lie in [{allowed.start}, {allowed.stop}) so that training and"
                        f" evaluation layouts never meet; got {bad[:5]}. Pick seeds in that range"
                        f" (evaluation default: --seed {EVAL_SEEDS.start})")


#: Where an expert points the hand (:func:`expert`): Meta-World's own target, or the fingertips on the goal.
AIMS = ("wrist", "fingertips")
#: Tasks whose expert drives the wrist onto the goal while success is measured from the fingertips.
_REACHES = ("reach-v3", "reach-wall-v3")
#: How far the fingertips' centre (Meta-World's ``tcp_center``, the open gripper's pads) sits below the wrist.
FINGERTIPS_BELOW_WRIST = 0.045


def expert(task: str, aim: str = "wrist") -> Callable[[np.ndarray], np.ndarray]:
    """Meta-World's scripted expert for ``task``: ``info["privileged"]`` -> action ``[4]`` in the action space.

    The experts are proportional controllers whose outputs reach +-12; :meth:`MetaWorldEnv.step` clips to
    [-1, 1], so the action returned is the clipped one, the action the environment executes.

    ``aim="fingertips"`` corrects the reach experts: Meta-World's drive the wrist (the observation's hand
    position) onto the goal, but success is the fingertips' centre within 5 cm of it, and the fingertips hang
    4.5 cm below the wrist, so its demonstrations settle 4.6 cm from the goal, 0.4 cm inside the success radius,
    and a policy imitating them fails on any error above that. Aimed 4.5 cm higher, the same controller brings
    the fingertips onto the goal. Other tasks' experts are unchanged."""
    from metaworld.policies import ENV_POLICY_MAP

    if aim not in AIMS:
        raise UsageError(f"aim must be one of {', '.join(AIMS)}, got {aim!r}")
    warnings.filterwarnings("ignore", "Constant\\(s\\) may be too high", UserWarning)  # their P-gains, by design
    policy = ENV_POLICY_MAP[task]()
    lift = np.array([0.0, 0.0, FINGERTIPS_BELOW_WRIST if aim == "fingertips" and task in _REACHES else 0.0])

    def act(privileged: np.ndarray) -> np.ndarray:
        if lift.any():
            privileged = np.concatenate([privileged[:-3], privileged[-3:] + lift])  # the goal, last 3 entries
        return np.clip(np.asarray(policy.get_action(privileged), dtype=np.float32), -1.0, 1.0)

    return act


#: LeRobot's Meta-World env (``lerobot.envs.metaworld``): its camera, that camera's position, its render size.
LEROBOT_CAMERA, LEROBOT_CAMERA_POS, LEROBOT_RENDER_SIZE = "corner2", (0.75, 0.075, 0.7), 480


class _LeRobotView:
    """The image of LeRobot's Meta-World env: Meta-World's renderer on ``corner2`` (moved as LeRobot moves
    it), 480x480, both axes flipped as LeRobot flips them, then resized to ``size``: ``[1, 3, size, size]``."""

    def __init__(self, mw, size: int):
        from gymnasium.envs.mujoco.mujoco_rendering import MujocoRenderer

        mw.model.cam_pos[mujoco.mj_name2id(mw.model, mujoco.mjtObj.mjOBJ_CAMERA, LEROBOT_CAMERA)] = LEROBOT_CAMERA_POS
        self.renderer = MujocoRenderer(mw.model, mw.data, width=LEROBOT_RENDER_SIZE, height=LEROBOT_RENDER_SIZE,
                                       camera_name=LEROBOT_CAMERA)
        self.size = size

    def __call__(self) -> np.ndarray:
        image = np.flip(self.renderer.render("rgb_array"), (0, 1))
        return resize_frames(np.ascontiguousarray(image.transpose(2, 0, 1))[None], self.size).numpy()

    def close(self) -> None:
        self.renderer.close()



class MetaWorldEnv(gym.Env):
    """One Meta-World v3 task with rendered views, metric depth and cameras (see module doc).

    Args:
        task: a v3 task name, e.g. ``"reach-v3"``.
        cameras: view names (:data:`VIEWS` or the model's cameras); empty renders nothing.
        height, width: image size in pixels.
        depth: also render metric depth.
        split: ``"train"`` or ``"eval"``: the seed range ``reset`` accepts.
        max_steps: steps before ``truncated`` (at most Meta-World's 500).
        goal_radius: radius of the drawn goal marker in metres (``None``: Meta-World's 2 cm).
        msaa: multisampling of the offscreen buffer (0 is fastest).
    """

    metadata = {"render_modes": [], "render_fps": 80}

    def __init__(self, task: str, cameras: Sequence[str] = DEFAULT_CAMERAS, height: int = 64, width: int = 64,
                 depth: bool = True, split: str = "train", max_steps: int = 500, goal_radius: float | None = 0.04,
                 msaa: int = 0):
        if split not in SPLITS:
            raise WamzooError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
        suite_tasks(tasks=[task])
        self.task, self.cameras, self.split = task, tuple(cameras), split
        self.height, self.width, self.with_depth, self.max_steps = height, width, depth, max_steps
        cls = ALL_V3_ENVIRONMENTS[task]
        self.mw = cls()
        # goal visible to the scripted expert, layouts unfrozen and drawn from the reset seed
        data = dict(env_cls=cls, rand_vec=np.zeros(self.mw._random_reset_space.shape), partially_observable=False)
        self.mw.set_task(Task(env_name=task, data=pickle.dumps(data)))
        self.mw._freeze_rand_vec = False
        self.mw.seeded_rand_vec = True
        if not 1 <= max_steps <= self.mw.max_path_length:
            raise WamzooError(f"max_steps must be within 1..{self.mw.max_path_length} (Meta-World's limit),"
                              f" got {max_steps}")
        model = self.mw.model
        goal = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_SITE, "goal")
        if goal_radius is not None and goal >= 0:
            model.site_size[goal, 0] = goal_radius
        model.vis.quality.offsamples = msaa
        self._cams = [self._camera(name) for name in self.cameras]
        self._views = _Views.acquire((task, height, width, msaa), model) if self.cameras else None
        V = len(self.cameras)
        self.observation_space = spaces.Dict({
            "rgb": spaces.Box(0, 255, (V, 3, height, width), np.uint8),
            "depth": spaces.Box(0.0, np.inf, (V, 1, height, width), np.float32),
            "state": spaces.Box(-np.inf, np.inf, (STATE_DIM,), np.float32),
            "intrinsics": spaces.Box(-np.inf, np.inf, (V, 3, 3), np.float32),
            "extrinsics": spaces.Box(-np.inf, np.inf, (V, 4, 4), np.float32),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self.fps = 1.0 / self.mw.dt
        self.steps, self._episodes = 0, 0
        self._lerobot: _LeRobotView | None = None

    @classmethod
    def like_lerobot(cls, task: str, size: int = 64, split: str = "train", max_steps: int = 500) -> "MetaWorldEnv":
        """The observation of LeRobot's Meta-World env (``lerobot-eval --env.type=metaworld``): its one camera
        ``corner2`` (posed, rendered at 480x480 and flipped as that env does, resized to ``size`` by
        :func:`resize_frames`), Meta-World's own 2 cm goal marker, no depth and no camera geometry (zero
        intrinsics, identity extrinsics); the same state."""
        env = cls(task, (), size, size, depth=False, split=split, max_steps=max_steps, goal_radius=None)
        env._lerobot = _LeRobotView(env.mw, size)
        env.cameras = (LEROBOT_CAMERA,)
        env.observation_space = spaces.Dict({
            "rgb": spaces.Box(0, 255, (1, 3, size, size), np.uint8),
            "state": env.observation_space["state"],
            "intrinsics": spaces.Box(0.0, 0.0, (1, 3, 3), np.float32),
            "extrinsics": spaces.Box(-np.inf, np.inf, (1, 4, 4), np.float32),
        })
        return env

    def _camera(self, name: str) -> mujoco.MjvCamera:
        cam = mujoco.MjvCamera()
        if name in VIEWS:
            view = VIEWS[name]
            cam.type = mujoco.mjtCamera.mjCAMERA_FREE
            cam.lookat[:] = view["lookat"]
            cam.distance, cam.azimuth, cam.elevation = view["distance"], view["azimuth"], view["elevation"]
            return cam
        cam.type = mujoco.mjtCamera.mjCAMERA_FIXED
        cam.fixedcamid = mujoco.mj_name2id(self.mw.model, mujoco.mjtObj.mjOBJ_CAMERA, name)
        if cam.fixedcamid < 0:
            model_cams = [self.mw.model.camera(i).name for i in range(self.mw.model.ncam)]
            raise WamzooError(f"unknown camera {name!r}; use one of {', '.join(VIEWS)} or a model camera"
                              f" ({', '.join(model_cams)})")
        return cam

    # -- gymnasium API ---------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Start an episode on the layout of ``seed`` (default: the split's next unused seed)."""
        super().reset(seed=None)
        seed = SPLITS[self.split].start + self._episodes if seed is None else int(seed)
        check_seeds([seed], self.split)
        self._episodes += 1
        self.mw.seed(seed)
        privileged, _ = self.mw.reset()
        mujoco.mj_forward(self.mw.model, self.mw.data)  # Meta-World moves the goal site after its last forward
        self.steps = 0
        info = {"task": self.task, "seed": seed, "success": False, "privileged": privileged,
                "layout": np.array(self.mw._last_rand_vec, dtype=np.float64)}
        return self._observe(privileged), info

    def step(self, action, render: bool = True):
        """Gymnasium's step; with ``render=False`` the observation holds ``state`` alone (the cameras are
        not rendered: an evaluator skips the frames its policy will never look at)."""
        action = np.clip(np.asarray(action, dtype=np.float32).reshape(ACTION_DIM), -1.0, 1.0)
        privileged, reward, _, _, mw_info = self.mw.step(action)
        self.steps += 1
        info = dict(mw_info, task=self.task, success=bool(mw_info["success"]), privileged=privileged)
        obs = self._observe(privileged) if render else {"state": np.asarray(privileged[:STATE_DIM], dtype=np.float32)}
        return obs, float(reward), False, self.steps >= self.max_steps, info

    def close(self) -> None:
        if self._lerobot is not None:
            self._lerobot.close()
            self._lerobot = None
        if self._views is not None:
            self._views.release()
            self._views = None
        self.mw.close()

    # -- observation -----------------------------------------------------------------------
    def _observe(self, privileged: np.ndarray) -> dict[str, np.ndarray]:
        if self._lerobot is not None:
            return {"state": np.asarray(privileged[:STATE_DIM], dtype=np.float32), "rgb": self._lerobot(),
                    "intrinsics": np.zeros((1, 3, 3), np.float32), "extrinsics": np.eye(4, dtype=np.float32)[None]}
        V, H, W = len(self.cameras), self.height, self.width
        obs = {"state": np.asarray(privileged[:STATE_DIM], dtype=np.float32),
               "rgb": np.zeros((V, 3, H, W), np.uint8), "intrinsics": np.zeros((V, 3, 3), np.float32),
               "extrinsics": np.zeros((V, 4, 4), np.float32)}
        if self.with_depth:
            obs["depth"] = np.zeros((V, 1, H, W), np.float32)
        for v, cam in enumerate(self._cams):
            depth = obs["depth"][v, 0] if self.with_depth else None
            scene = self._views.render(self.mw.model, self.mw.data, cam, obs["rgb"][v], depth)
            obs["intrinsics"][v], obs["extrinsics"][v] = self._pinhole(scene)
        return obs

    def _pinhole(self, scene: mujoco.MjvScene) -> tuple[np.ndarray, np.ndarray]:
        """Intrinsics and camera-to-world extrinsics (OpenCV axes) of the camera just rendered."""
        gl = mujoco.mjv_averageCamera(scene.camera[0], scene.camera[1])
        fovy = 2 * np.degrees(np.arctan((gl.frustum_top - gl.frustum_bottom) / 2 / gl.frustum_near))
        K = intrinsics_from_fovy(fovy, self.height, self.width).numpy()
        forward, up = np.asarray(gl.forward, np.float64), np.asarray(gl.up, np.float64)
        E = np.eye(4)
        E[:3, :3] = np.stack([np.cross(forward, up), -up, forward], axis=1)
        E[:3, 3] = gl.pos
        return K, E.astype(np.float32)


class _Views:
    """Offscreen renderer reading RGB and depth from one pass (``mujoco.Renderer`` renders twice).

    Shadows, reflections and skybox are off; depth is linearised to metres exactly as
    ``mujoco.Renderer`` does (reversed-Z buffer, planes ``znear * extent`` and ``zfar * extent``).
    Environments of one task and size share one (:meth:`acquire`): the GL context and the uploaded
    meshes and textures cost a second to make, and each render takes the environment's own model and data.
    """

    _shared: dict[tuple, "_Views"] = {}

    def __init__(self, model: mujoco.MjModel, height: int, width: int):
        if width > model.vis.global_.offwidth or height > model.vis.global_.offheight:
            raise WamzooError(f"{height}x{width} exceeds the offscreen buffer"
                              f" ({model.vis.global_.offheight}x{model.vis.global_.offwidth}); use a smaller size")
        _load_triton_first()
        if os.environ.get("MUJOCO_GL", "").lower() == "egl":  # even if mujoco was imported first
            from mujoco.egl import GLContext
        else:
            GLContext = mujoco.GLContext
        self.gl = GLContext(width, height)
        self.gl.make_current()
        self.ctx = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_150)
        atexit.register(self.close)  # before EGL's own exit hook tears the display down
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self.ctx)
        self.ctx.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
        self.scene = mujoco.MjvScene(model, maxgeom=10_000)
        for flag in (mujoco.mjtRndFlag.mjRND_SHADOW, mujoco.mjtRndFlag.mjRND_REFLECTION,
                     mujoco.mjtRndFlag.mjRND_SKYBOX):
            self.scene.flags[flag] = False
        self.option = mujoco.MjvOption()
        self.rect = mujoco.MjrRect(0, 0, width, height)
        self.rgb = np.zeros((height, width, 3), np.uint8)
        self.depth = np.zeros((height, width), np.float32)
        extent = model.stat.extent
        self.near, self.far = model.vis.map.znear * extent, model.vis.map.zfar * extent
        self.key, self.users = None, 0

    @classmethod
    def acquire(cls, key: tuple, model: mujoco.MjModel) -> "_Views":
        """The renderer shared by the environments of ``key`` (task, height, width, msaa); :meth:`release` it."""
        views = cls._shared.get(key)
        if views is None:
            views = cls._shared[key] = cls(model, key[1], key[2])
            views.key = key
        views.users += 1
        return views

    def release(self) -> None:
        self.users -= 1
        if self.users <= 0:
            self._shared.pop(self.key, None)
            self.close()

    def render(self, model: mujoco.MjModel, data: mujoco.MjData, camera: mujoco.MjvCamera, rgb: np.ndarray,
               depth: np.ndarray | None) -> mujoco.MjvScene:
        """Render ``camera`` into ``rgb`` ``[3, H, W]`` and ``depth`` ``[H, W]`` (metres); returns the scene."""
        self.gl.make_current()
        mujoco.mjv_updateScene(model, data, self.option, None, camera, mujoco.mjtCatBit.mjCAT_ALL, self.scene)
        mujoco.mjr_render(self.rect, self.scene, self.ctx)
        mujoco.mjr_readPixels(self.rgb, self.depth if depth is not None else None, self.rect, self.ctx)
        rgb[:] = self.rgb[::-1].transpose(2, 0, 1)
        if depth is not None:
            z = self.depth[::-1].astype(np.float64)
            depth[:] = self.near * self.far / (z * (self.far - self.near) + self.near)
        return self.scene

    def close(self) -> None:
        atexit.unregister(self.close)
        self.ctx.free()
        self.gl.free()


def _load_triton_first() -> None:
    """Load triton's bundled LLVM before Mesa's software renderer loads its own: in the other order,
    a later ``import triton`` (torch.compile, torchvision, diffusers) crashes the process."""
    try:
        import triton  # noqa: F401
    except ImportError:
        pass
