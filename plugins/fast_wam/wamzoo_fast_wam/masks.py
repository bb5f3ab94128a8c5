"""Fast-WAM's attention masks (paper: attention mask of the MoT; code: ``FastWAM._build_mot_attention_mask``,
``FastWAMJoint._build_mot_attention_mask``, ``FastWAMIDM._build_teacher_forcing_attention_mask``).

Rules over the token groups of :mod:`wamzoo.nn.masks` (``"query -> key": kind``; unnamed pairs
are hidden). Groups: ``video.cond`` (the clean current frame), ``video.future`` (noisy future
frames), ``video_cond.cond`` / ``video_cond.future`` (IDM's conditioning copy of the video) and
``action``.

- ``default`` ("first-frame causal"): first-frame tokens see only first-frame tokens; future
  frames see all video; actions see all actions and the first frame only. The future video can
  therefore be dropped at test time: the action never reads it (skip imagination).
- ``joint``: actions see all video tokens, so video and actions are denoised together.
- ``idm``: sequence [noisy video, conditioning video, action]; each video copy is first-frame
  causal within itself; actions see all actions and the conditioning video only. Inference
  generates the future video first and then reads it as the conditioning video.

Video never attends to actions in any variant.

>>> from wamzoo.nn.masks import MaskRules
>>> rules = MaskRules(MASKS["default"])
"""

from __future__ import annotations

#: Stream name of IDM's conditioning copy of the video.
COND_VIDEO = "video_cond"

FIRST_FRAME_CAUSAL = {
    "video.cond -> video.cond": "all",
    "video.future -> video.*": "all",
}

MASKS: dict[str, dict[str, str]] = {
    "default": {**FIRST_FRAME_CAUSAL, "action -> action": "all", "action -> video.cond": "all"},
    "joint": {**FIRST_FRAME_CAUSAL, "action -> action": "all", "action -> video.*": "all"},
    "idm": {
        **FIRST_FRAME_CAUSAL,
        f"{COND_VIDEO}.cond -> {COND_VIDEO}.cond": "all",
        f"{COND_VIDEO}.future -> {COND_VIDEO}.*": "all",
        "action -> action": "all",
        f"action -> {COND_VIDEO}.*": "all",
    },
}

VARIANTS = tuple(MASKS)
