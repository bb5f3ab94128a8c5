"""Text instructions: the Wan UMT5 encoder resolved from a Hugging Face cache (offline), zero-padded embeddings,
an on-disk cache that encodes each instruction once, and ``predict(obs, instruction=...)``."""

import json

import pytest
import torch

from wamzoo.instructions import InstructionEncoder

pytest.importorskip("transformers")

TOKENIZER, ENCODER = "google/umt5-xxl", "Wan-AI/Wan2.2-TI2V-5B-Diffusers"
WORDS = ["<pad>", "</s>", "<unk>", "put", "the", "bowl", "on", "plate", "open", "drawer"]


def tiny_text_cache(root, d_model=8):
    """A Hugging Face cache holding a tiny random UMT5 encoder (``ENCODER``, subfolder ``text_encoder``) and a
    word-level tokenizer (``TOKENIZER``) of :data:`WORDS`, as ``from_pretrained`` finds them offline."""
    from tokenizers import Tokenizer, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast, UMT5Config, UMT5EncoderModel

    from wamzoo.testing import hub_cache

    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(WORDS)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    tok.post_processor = processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(root / "tok")
    (root / "tok" / "config.json").write_text('{"model_type": "umt5"}')  # as google/umt5-xxl has one
    torch.manual_seed(0)
    model = UMT5EncoderModel(UMT5Config(vocab_size=len(WORDS), d_model=d_model, d_kv=4, d_ff=16, num_layers=1,
                                        num_heads=2, relative_attention_num_buckets=4))
    model.eval().save_pretrained(root / "enc")
    hub_cache(root / "hf", TOKENIZER, {p.name: p for p in (root / "tok").iterdir()})
    hub_cache(root / "hf", ENCODER, {f"text_encoder/{p.name}": p for p in (root / "enc").iterdir()})
    return model


@pytest.fixture
def offline_text(tmp_path, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    model = tiny_text_cache(tmp_path)
    spec = {"tokenizer": TOKENIZER, "encoder": ENCODER, "subfolder": "text_encoder", "max_length": 6,
            "cache_dir": str(tmp_path / "instr"), "hf_cache_dir": str(tmp_path / "hf")}
    return model, spec, tmp_path


def test_texts_become_zero_padded_embeddings_encoded_once(offline_text, monkeypatch):
    model, spec, tmp = offline_text
    enc = InstructionEncoder(**spec)
    emb, mask = enc(["put the bowl on the plate", "open the drawer"])
    assert emb.shape == (2, 6, 8) and emb.dtype == torch.float32 and mask.all()
    ids = torch.tensor([[3, 4, 5, 6, 4, 1], [8, 4, 9, 1, 0, 0]])   # words, </s>, then padding (truncated at 6)
    with torch.no_grad():
        want = model(input_ids=ids, attention_mask=(ids > 0) | (ids == 1)).last_hidden_state
    want[1, 4:] = 0                                                  # LeRobot/Wan: padding embeddings are zeroed
    torch.testing.assert_close(emb, want)
    assert len(list((tmp / "instr").rglob("*.safetensors"))) == 2
    kept, _ = InstructionEncoder(**spec, zero_padding=False)(["open the drawer"])   # X-WAM keeps the padding outputs
    assert kept[0, 4:].abs().sum() > 0 and torch.allclose(kept[0, :4], emb[1, :4])
    calls = []
    monkeypatch.setattr(InstructionEncoder, "encode", lambda self, texts: calls.append(texts))
    again, _ = InstructionEncoder(**spec)(["open the drawer", "put the bowl on the plate"])
    assert calls == [] and torch.equal(again, emb.flip(0))          # read back from the cache, not re-encoded


def test_predict_takes_the_instruction_in_words(offline_text):
    from wamzoo.testing import tiny_policy

    _, spec, _ = offline_text
    policy, batch = tiny_policy("tiny-mot", ["policy.context.num_tasks=0", "policy.context.instruction_dim=8",
                                             f"policy.context.text_encoder={json.dumps(spec)}"])
    obs = batch.observation().replace(task_id=None)
    words = policy.eval().predict_action(obs, instruction="open the drawer")
    emb, mask = policy.context.encode_text(["open the drawer"] * obs.batch_size)
    assert torch.equal(words, policy.predict_action(obs.replace(instruction=emb, instruction_mask=mask)))
    assert not torch.equal(words, policy.predict_action(obs, instruction="put the bowl on the plate"))
    with pytest.raises(Exception, match="one per sample"):
        policy.predict_action(obs, instruction=["open the drawer"] * (obs.batch_size + 1))


def test_a_policy_without_a_text_encoder_says_what_it_reads():
    from wamzoo.testing import tiny_policy

    policy, batch = tiny_policy("tiny-mot")
    with pytest.raises(Exception, match="takes no text instruction.*task ids"):
        policy.predict_action(batch.observation(), instruction="open the drawer")
