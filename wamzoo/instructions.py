"""Language instructions as text: the Wan UMT5 encoder turns an instruction into the context tokens the
papers' policies read (``WAMPolicy.predict(obs, instruction="put the bowl on the plate")``), with an
on-disk cache so that each distinct instruction is encoded once.

As LeRobot's FastWAM and the Wan2.2 code: the UMT5 tokenizer (``google/umt5-xxl``) pads or truncates to
``max_length`` tokens (128), the encoder is ``UMT5EncoderModel`` (``Wan-AI/Wan2.2-TI2V-5B-Diffusers``,
subfolder ``text_encoder``); the embeddings past the text's own tokens are zeroed and every position is
kept in the mask (a fixed-length context). Needs ``transformers`` (``pip install wamzoo[text]``); the
tokenizer and encoder resolve from the Hugging Face cache (offline with ``HF_HUB_OFFLINE=1``).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor

from wamzoo.errors import UsageError

#: The Wan2.2 text encoder, as the converted policies record it (``policy.context.text_encoder``).
WAN_UMT5 = {"tokenizer": "google/umt5-xxl", "encoder": "Wan-AI/Wan2.2-TI2V-5B-Diffusers",
            "subfolder": "text_encoder", "max_length": 128}


def default_cache() -> Path:
    """``$WAMZOO_CACHE/instructions`` (default ``~/.cache/wamzoo/instructions``)."""
    return Path(os.environ.get("WAMZOO_CACHE", Path.home() / ".cache" / "wamzoo")) / "instructions"


class InstructionEncoder:
    """Texts -> ``(embeddings [B, max_length, D] float32, mask [B, max_length] bool)``, cached per text.

    Args:
        tokenizer, encoder, subfolder: Hugging Face ids (or local folders) of the tokenizer and encoder.
        max_length: tokens per instruction (padded or truncated).
        zero_padding: zero the embeddings past each text's own tokens (Wan2.2, LeRobot, AHA-WAM); X-WAM's
            release keeps the encoder's outputs at the padding positions.
        cache_dir: where encoded instructions are kept (default: :func:`default_cache`); ``None`` entries
            of a spec use the default.
        hf_cache_dir: Hugging Face cache to resolve the models from (default: the user's).
        device, dtype: where and at what precision the encoder runs (its outputs are float32).
    """

    def __init__(self, tokenizer: str = WAN_UMT5["tokenizer"], encoder: str = WAN_UMT5["encoder"],
                 subfolder: str | None = WAN_UMT5["subfolder"], max_length: int = WAN_UMT5["max_length"],
                 zero_padding: bool = True, cache_dir: str | os.PathLike | None = None, hf_cache_dir: str | None = None,
                 device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
        self.spec = {"tokenizer": tokenizer, "encoder": encoder, "subfolder": subfolder, "max_length": int(max_length),
                     "zero_padding": bool(zero_padding)}
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache()
        self.hf_cache_dir, self.device, self.dtype = hf_cache_dir, torch.device(device), dtype
        self._tokenizer: Any = None
        self._encoder: Any = None

    def _key(self, text: str) -> Path:
        digest = hashlib.sha256(json.dumps([self.spec, text], sort_keys=True).encode()).hexdigest()
        return self.cache_dir / digest[:2] / f"{digest}.safetensors"

    def _models(self):
        if self._encoder is None:
            try:
                from transformers import AutoTokenizer, UMT5EncoderModel
                from transformers.utils import logging as hf_logging
            except ImportError:
                raise UsageError("text instructions need the UMT5 encoder from `transformers`:"
                                 " pip install 'wamzoo[text]' (or pass batch.instruction embeddings)") from None
            hf_logging.disable_progress_bar()
            self._tokenizer = AutoTokenizer.from_pretrained(self.spec["tokenizer"], cache_dir=self.hf_cache_dir)
            extra = {"subfolder": self.spec["subfolder"]} if self.spec["subfolder"] else {}
            self._encoder = UMT5EncoderModel.from_pretrained(self.spec["encoder"], cache_dir=self.hf_cache_dir,
                                                             dtype=self.dtype, **extra).to(self.device).eval()
        return self._tokenizer, self._encoder

    @torch.no_grad()
    def encode(self, texts: Sequence[str]) -> Tensor:
        """The zero-padded embeddings ``[B, max_length, D]`` of ``texts`` (no cache)."""
        tokenizer, encoder = self._models()
        out = tokenizer(list(texts), padding="max_length", truncation=True, max_length=self.spec["max_length"],
                        add_special_tokens=True, return_tensors="pt")
        ids, mask = out.input_ids.to(self.device), out.attention_mask.to(self.device)
        emb = encoder(input_ids=ids, attention_mask=mask).last_hidden_state.float()
        return emb * mask[..., None].to(emb) if self.spec["zero_padding"] else emb

    def __call__(self, texts: str | Sequence[str]) -> tuple[Tensor, Tensor]:
        from safetensors.torch import load_file, save_file

        texts = [texts] if isinstance(texts, str) else list(texts)
        found = {t: load_file(str(self._key(t)))["embedding"] for t in set(texts) if self._key(t).is_file()}
        todo = sorted(set(texts) - set(found))
        if todo:
            for text, emb in zip(todo, self.encode(todo).cpu()):
                path = self._key(text)
                path.parent.mkdir(parents=True, exist_ok=True)
                save_file({"embedding": emb.contiguous()}, str(path), metadata={"text": text})
                found[text] = emb
        emb = torch.stack([found[t] for t in texts])
        return emb, torch.ones(emb.shape[:2], dtype=torch.bool)
