"""The context every component cross-attends to: task or instruction tokens, plus a proprio token.

Fast-WAM (§3.1) appends proprioception, projected to the text width, as one extra context token;
the released models use T5 instruction embeddings (``instruction`` in the batch, or text encoded by
:mod:`wamzoo.instructions`). On the embedded Meta-World benchmark tasks are conditioned by name through
a learned task embedding. With ``keypoints``, the present frame's spatial-softmax keypoints
(:mod:`wamzoo.nn.spatial_softmax`, Diffusion Policy's image pooling) are appended as tokens too.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
from torch import nn

from wamzoo.batch import Batch, BatchError
from wamzoo.errors import UsageError
from wamzoo.instructions import InstructionEncoder
from wamzoo.interfaces import Conditioning
from wamzoo.nn.spatial_softmax import KeypointEncoder


class ContextEncoder(nn.Module):
    """Builds :class:`~wamzoo.interfaces.Conditioning` from a batch.

    Args:
        dim: width of the context tokens (the experts' ``text_dim``).
        num_tasks: size of the learned task embedding (0: use ``batch.instruction``).
        task_tokens: context tokens per task.
        state_dim: proprio width; with ``state_token`` a linear layer appends one token.
        state_token: append the proprio token (Fast-WAM); X-WAM denoises state instead.
        instruction_dim: width of precomputed instruction embeddings, projected to ``dim`` if different.
        text_encoder: the encoder of text instructions (:class:`~wamzoo.instructions.InstructionEncoder`'s
            arguments, e.g. :data:`~wamzoo.instructions.WAN_UMT5`); ``None``: the policy takes no text.
        keypoints: spatial-softmax keypoints per view of the present frame appended as tokens (0: none).
        keypoint_width: channels of the keypoint encoder's convolutions.
        num_views: cameras per frame (the keypoint encoder's; the policy passes the data's).
    """

    def __init__(self, dim: int, num_tasks: int = 0, task_tokens: int = 1, state_dim: int = 0,
                 state_token: bool = True, instruction_dim: int | None = None,
                 text_encoder: dict[str, Any] | None = None, keypoints: int = 0, keypoint_width: int = 32,
                 num_views: int = 1):
        super().__init__()
        self.text_encoder = dict(text_encoder) if text_encoder else None
        self._texts: InstructionEncoder | None = None
        self.dim, self.task_tokens = dim, task_tokens
        self.task = nn.Embedding(num_tasks, task_tokens * dim) if num_tasks else None
        if self.task is not None:
            nn.init.normal_(self.task.weight, std=1.0)
        self.instruction = nn.Linear(instruction_dim, dim) if instruction_dim and instruction_dim != dim else None
        self.proprio = nn.Linear(state_dim, dim) if state_token and state_dim else None
        self.keypoints = KeypointEncoder(num_views, keypoints, dim, keypoint_width) if keypoints else None

    def encode_text(self, texts: str | Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Instruction embeddings and mask for ``texts`` by the policy's text encoder (cached on disk)."""
        if self.text_encoder is None:
            raise UsageError("this policy takes no text instruction (its context has no text_encoder): it is"
                             " conditioned on " + ("task ids (batch.task_id)" if self.task is not None else
                                                   "precomputed embeddings (batch.instruction)"))
        if self._texts is None:
            self._texts = InstructionEncoder(**self.text_encoder)
        return self._texts(texts)

    def forward(self, batch: Batch, state: torch.Tensor | None) -> Conditioning:
        parts, masks = [], []
        B = batch.batch_size
        if batch.instruction is not None:
            ctx = batch.instruction.float()
            parts.append(self.instruction(ctx) if self.instruction is not None else ctx)
            masks.append(batch.instruction_mask if batch.instruction_mask is not None
                         else torch.ones(ctx.shape[:2], dtype=torch.bool, device=ctx.device))
        elif self.task is not None:
            if batch.task_id is None:
                raise BatchError("this policy is conditioned on tasks: the batch needs `task_id` (or `instruction`)")
            if int(batch.task_id.max()) >= self.task.num_embeddings or int(batch.task_id.min()) < 0:
                raise BatchError(f"task_id out of range 0..{self.task.num_embeddings - 1}: {batch.task_id.tolist()}")
            parts.append(self.task(batch.task_id).view(B, self.task_tokens, self.dim))
            masks.append(torch.ones(B, self.task_tokens, dtype=torch.bool, device=batch.rgb.device))
        if self.proprio is not None:
            if state is None:
                raise BatchError("this policy reads proprioception: the batch needs `state` [B, S]")
            parts.append(self.proprio(state.float())[:, None])
            masks.append(torch.ones(B, 1, dtype=torch.bool, device=state.device))
        if self.keypoints is not None:
            now = batch.rgb_now[:, -1] if batch.rgb_now is not None else batch.rgb[:, batch.n_obs - 1]
            tokens = self.keypoints(now / 255.0 if now.dtype == torch.uint8 else now)
            parts.append(tokens)
            masks.append(torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device))
        if not parts:
            return Conditioning(state=state, batch=batch)
        return Conditioning(torch.cat(parts, 1), torch.cat(masks, 1), state, batch)
