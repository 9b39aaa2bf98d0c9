"""The CLIP text encoder against transformers/diffusers on the same tiny random weights."""

from __future__ import annotations

import pytest
import torch
from transformers import CLIPTextModel

from engine.errors import CorruptCheckpointError, InvalidRequestError, MissingComponentError
from engine.text.encoder import TextEncoder, text_config_from_shapes
from engine.text.tokenizer import get_tokenizer
from tests.factories import (
    CLIP_PREFIX,
    random_weights,
    reference_shapes,
    shapes_of,
    strip_prefix,
    tiny_clip_config,
)

TRANSFORMER_PREFIX = "cond_stage_model.transformer."
PROMPT = "a photograph of an astronaut riding a horse"
LONG_PROMPT = "a very long prompt, " * 20  # 100 tokens: two chunks
TOL = 1e-4


@pytest.fixture(scope="module")
def checkpoint() -> dict[str, torch.Tensor]:
    """The text-encoder part of a tiny SD1 file: ``cond_stage_model.transformer.text_model.*``."""
    with torch.device("meta"):
        shapes = shapes_of(CLIPTextModel(tiny_clip_config()))
    sd = random_weights({CLIP_PREFIX + k.removeprefix("text_model."): s for k, s in shapes.items()})
    sd[CLIP_PREFIX + "embeddings.position_ids"] = torch.arange(77)[None]  # (1, 77), as real files
    return sd


def flat_layout(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The same tensors as some SD1 files store them: ``cond_stage_model.transformer.*``."""
    return {k.replace(CLIP_PREFIX, TRANSFORMER_PREFIX): v for k, v in sd.items()}


@pytest.fixture(scope="module")
def reference(checkpoint, tmp_path_factory) -> CLIPTextModel:
    """diffusers' single-file CLIP loader (convert_ldm_clip_checkpoint) on the same weights."""
    from diffusers.loaders.single_file_utils import create_diffusers_clip_model_from_ldm

    folder = tmp_path_factory.mktemp("clip_config")
    tiny_clip_config().save_pretrained(folder)
    model = create_diffusers_clip_model_from_ldm(
        CLIPTextModel, checkpoint, config=str(folder), local_files_only=True
    )
    # diffusers loads non-strictly: make sure every weight really came from the checkpoint.
    loaded = {k.removeprefix("text_model."): v for k, v in model.state_dict().items()}
    for key, tensor in strip_prefix(checkpoint, CLIP_PREFIX).items():
        if not key.endswith("position_ids"):
            assert torch.equal(loaded[key], tensor), key
    return model.eval()


def rows(*prompts: str) -> torch.Tensor:
    tok = get_tokenizer()
    return torch.tensor([r for p in prompts for r in tok.chunk_ids(p)])  # (N, 77)


def reference_states(model: CLIPTextModel, ids: torch.Tensor, clip_skip: int) -> torch.Tensor:
    with torch.no_grad():
        out = model(input_ids=ids, output_hidden_states=True)
    if clip_skip == 1:
        return out.last_hidden_state
    return model.final_layer_norm(out.hidden_states[-clip_skip])


@pytest.mark.parametrize("layout", ["text_model", "flat"])
@pytest.mark.parametrize("clip_skip", [1, 2])
def test_matches_diffusers(checkpoint, reference, layout, clip_skip):
    sd = checkpoint if layout == "text_model" else flat_layout(checkpoint)
    encoder = TextEncoder.from_state_dict(sd, prefix=TRANSFORMER_PREFIX)
    ids = rows(PROMPT, "", "Ünïcödé, 123 😀")  # (3, 77)
    ours = encoder.encode(ids, clip_skip=clip_skip)
    assert ours.shape == (3, 77, 64)
    torch.testing.assert_close(ours, reference_states(reference, ids, clip_skip), rtol=0, atol=TOL)


def test_clip_skip_2_is_the_penultimate_layer_normed(checkpoint):
    """Independent of hidden_states: a copy without the last layer gives the same states."""
    encoder = TextEncoder.from_state_dict(checkpoint, prefix=TRANSFORMER_PREFIX)
    config = tiny_clip_config()
    config.num_hidden_layers -= 1
    with torch.device("meta"):
        one_layer = CLIPTextModel(config).eval()
    own = strip_prefix(checkpoint, CLIP_PREFIX)
    kept = {k: v for k, v in own.items() if "layers.1." not in k and "position_ids" not in k}
    wrapped = any(k.startswith("text_model.") for k in one_layer.state_dict())
    kept = {("text_model." if wrapped else "") + k: v for k, v in kept.items()}
    one_layer.load_state_dict(kept, assign=True)
    ids = rows(PROMPT)
    with torch.no_grad():  # position ids given: the meta buffer is never read
        expected = one_layer(input_ids=ids, position_ids=torch.arange(77)[None]).last_hidden_state
    skipped = encoder.encode(ids, clip_skip=2)
    torch.testing.assert_close(skipped, expected, rtol=0, atol=TOL)
    assert (skipped - encoder.encode(ids, clip_skip=1)).abs().max() > 1e-2


def test_loads_by_assignment_without_copies(checkpoint):
    sd = strip_prefix(checkpoint, TRANSFORMER_PREFIX)
    encoder = TextEncoder.from_state_dict(sd)
    embedding = encoder.model.get_input_embeddings().weight
    assert embedding.data_ptr() == sd["text_model.embeddings.token_embedding.weight"].data_ptr()
    # Positions are made per call (no position_ids buffer): nothing is left on the meta device.
    assert not any(t.is_meta for t in [*encoder.model.parameters(), *encoder.model.buffers()])


def test_long_prompt_is_encoded_in_chunks(checkpoint):
    encoder = TextEncoder.from_state_dict(checkpoint, prefix=TRANSFORMER_PREFIX)
    cond, uncond = encoder.encode_prompts(LONG_PROMPT, "")
    assert cond.shape == uncond.shape == (1, 154, 64)
    chunks = encoder.encode(rows(LONG_PROMPT))  # (2, 77, 64)
    empty = encoder.encode(rows(""))  # (1, 77, 64)
    torch.testing.assert_close(cond[0], torch.cat([chunks[0], chunks[1]]), rtol=0, atol=TOL)
    torch.testing.assert_close(uncond[0], torch.cat([empty[0], empty[0]]), rtol=0, atol=TOL)


def test_short_prompt_is_padded_to_the_longer_negative(checkpoint):
    encoder = TextEncoder.from_state_dict(checkpoint, prefix=TRANSFORMER_PREFIX)
    cond, uncond = encoder.encode_prompts(PROMPT, LONG_PROMPT, clip_skip=2)
    assert cond.shape == uncond.shape == (1, 154, 64)
    own = encoder.encode(rows(PROMPT), clip_skip=2)[0]
    empty = encoder.encode(rows(""), clip_skip=2)[0]
    torch.testing.assert_close(cond[0], torch.cat([own, empty]), rtol=0, atol=TOL)
    short, _ = encoder.encode_prompts(PROMPT, "bad hands")
    assert short.shape == (1, 77, 64)


def test_runs_in_the_requested_dtype(checkpoint):
    full = TextEncoder.from_state_dict(checkpoint, prefix=TRANSFORMER_PREFIX)
    half = TextEncoder.from_state_dict(checkpoint, prefix=TRANSFORMER_PREFIX, dtype=torch.bfloat16)
    assert half.dtype == torch.bfloat16 and half.device == torch.device("cpu")
    out = half.encode(rows(PROMPT))
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), full.encode(rows(PROMPT)), rtol=0, atol=0.1)


def test_config_from_real_sd1_shapes():
    for prefix in ("", "text_model."):
        config = text_config_from_shapes(reference_shapes("CLIP-v1-SD", prefix))
        assert (config.hidden_size, config.num_hidden_layers) == (768, 12)
        assert (config.num_attention_heads, config.intermediate_size) == (12, 3072)
        assert (config.vocab_size, config.max_position_embeddings) == (49408, 77)
        assert config.hidden_act == "quick_gelu"


def test_config_from_tiny_shapes(checkpoint):
    config = text_config_from_shapes(shapes_of(strip_prefix(checkpoint, CLIP_PREFIX)))
    assert (config.hidden_size, config.num_hidden_layers) == (64, 2)
    assert (config.num_attention_heads, config.intermediate_size) == (1, 128)


def test_clip_skip_out_of_range(checkpoint):
    encoder = TextEncoder.from_state_dict(checkpoint, prefix=TRANSFORMER_PREFIX)
    for bad in (0, 3):
        with pytest.raises(InvalidRequestError, match="CLIP skip"):
            encoder.encode(rows(PROMPT), clip_skip=bad)


def test_damaged_text_encoders_are_reported(checkpoint):
    missing = {k: v for k, v in checkpoint.items() if "layers.1.mlp.fc2.bias" not in k}
    with pytest.raises(CorruptCheckpointError, match="fc2.bias"):
        TextEncoder.from_state_dict(missing, prefix=TRANSFORMER_PREFIX)
    no_embedding = {k: v for k, v in checkpoint.items() if "token_embedding" not in k}
    with pytest.raises(MissingComponentError, match="token_embedding"):
        TextEncoder.from_state_dict(no_embedding, prefix=TRANSFORMER_PREFIX)
    flat_embedding = {
        **checkpoint,
        CLIP_PREFIX + "embeddings.token_embedding.weight": torch.zeros(9),
    }
    with pytest.raises(CorruptCheckpointError, match="odd shapes"):
        TextEncoder.from_state_dict(flat_embedding, prefix=TRANSFORMER_PREFIX)
    key = CLIP_PREFIX + "encoder.layers.0.self_attn.q_proj.weight"
    wrong_shape = {**checkpoint, key: torch.zeros(64, 32)}
    with pytest.raises(CorruptCheckpointError):
        TextEncoder.from_state_dict(wrong_shape, prefix=TRANSFORMER_PREFIX)
