"""LoRA files of every supported layout are read into layers that find their module."""

import json
from pathlib import Path

import pytest
import torch
from transformers import CLIPTextConfig, CLIPTextModel

from engine.errors import InvalidRequestError
from engine.lora.errors import UnsupportedLoraError
from engine.lora.formats import parse_lora, read_lora
from engine.lora.patcher import fits
from engine.lora.tags import LoraTag, lora_tags
from engine.lora.targets import TargetIndex, kohya_to_dotted
from engine.models.unet import UNetConfig, UNetModel
from tests.engine.lora.lora_files import layer, write_lora
from tests.factories import reference_shapes

RANK = 4


@pytest.fixture(scope="module")
def full_size_index() -> TargetIndex:
    """The SD 1.5 UNet and CLIP ViT-L/14 on the meta device: real names and shapes, no memory."""
    with torch.device("meta"):
        unet = UNetModel(UNetConfig())
        clip = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072))
    return TargetIndex(unet, UNetConfig(), clip)


def _real_lora(names: tuple[str, ...]) -> dict[str, torch.Tensor]:
    """Tensors with the shapes of a real kohya SD1 LoRA's key list, the free rank set to 4."""
    shapes = {}
    for name in names:
        shapes |= reference_shapes(name)
    return {k: torch.zeros(tuple(RANK if d == -1 else d for d in s)) for k, s in shapes.items()}


@pytest.mark.parametrize("lists", [("LoRA-v1A-UNET", "LoRA-v1A-CLIP"), ("LoRA-v1-UNET",)])
def test_every_layer_of_a_real_sd1_lora_fits_the_full_size_model(full_size_index, lists):
    lora = parse_lora(Path("real.safetensors"), _real_lora(lists), {})
    assert lora.format == "kohya" and lora.ignored == 0
    targets = [full_size_index.find(layer) for layer in lora.layers]
    missing = [la.module for la, t in zip(lora.layers, targets, strict=True) if t is None]
    assert not missing
    assert all(fits(la, t.module.weight) for la, t in zip(lora.layers, targets, strict=True))
    assert len({t.key for t in targets}) == len(lora.layers)  # no two layers on one module
    assert len(lora.layers) == sum(len(reference_shapes(n)) for n in lists) // (
        3 if lists[0].startswith("LoRA-v1A") else 2
    )


@pytest.mark.parametrize(
    ("kohya", "ours"),
    [
        (
            "lora_unet_down_blocks_0_attentions_0_transformer_blocks_0_attn1_to_q",
            "unet:input_blocks.1.1.transformer_blocks.0.attn1.to_q",
        ),
        (
            "lora_unet_down_blocks_2_attentions_1_transformer_blocks_0_attn2_to_out_0",
            "unet:input_blocks.8.1.transformer_blocks.0.attn2.to_out.0",
        ),
        ("lora_unet_mid_block_attentions_0_proj_in", "unet:middle_block.1.proj_in"),
        ("lora_unet_up_blocks_3_attentions_2_proj_out", "unet:output_blocks.11.1.proj_out"),
        (
            "lora_unet_up_blocks_1_attentions_0_transformer_blocks_0_ff_net_0_proj",
            "unet:output_blocks.3.1.transformer_blocks.0.ff.net.0.proj",
        ),
        (
            "lora_unet_down_blocks_1_resnets_0_conv_shortcut",
            "unet:input_blocks.4.0.skip_connection",
        ),
        ("lora_unet_up_blocks_0_resnets_2_time_emb_proj", "unet:output_blocks.2.0.emb_layers.1"),
        ("lora_unet_down_blocks_2_downsamplers_0_conv", "unet:input_blocks.9.0.op"),
        ("lora_unet_up_blocks_1_upsamplers_0_conv", "unet:output_blocks.5.2.conv"),
        # LDM names (SDXL-style kohya files, some converters): taken as they are.
        (
            "lora_unet_input_blocks_1_1_transformer_blocks_0_attn1_to_q",
            "unet:input_blocks.1.1.transformer_blocks.0.attn1.to_q",
        ),
        ("lora_te_text_model_encoder_layers_11_mlp_fc2", "te:encoder.layers.11.mlp.fc2"),
    ],
)
def test_kohya_names_find_the_original_layer(full_size_index, kohya, ours):
    lora = parse_lora(Path("x.safetensors"), layer(kohya, 8, 8), {})
    target = full_size_index.find(lora.layers[0])
    assert target is not None and target.key == ours


def test_kohya_to_dotted_keeps_diffusers_words_whole():
    assert kohya_to_dotted("up_blocks_1_attentions_0_transformer_blocks_0_attn1_to_out_0") == (
        "up_blocks.1.attentions.0.transformer_blocks.0.attn1.to_out.0"
    )
    assert kohya_to_dotted("mid_block_resnets_1_time_emb_proj") == (
        "mid_block.resnets.1.time_emb_proj"
    )
    assert kohya_to_dotted("conv_norm_out") == "conv_norm_out"


def test_alpha_scales_by_alpha_over_rank_and_defaults_to_one():
    tensors = layer("lora_unet_a", 4, 4, rank=8) | {"lora_unet_a.alpha": torch.tensor(2.0)}
    tensors |= layer("lora_te_b", 4, 4, rank=8)
    scales = {la.module: la.scale for la in parse_lora(Path("x"), tensors, {}).layers}
    assert scales == {"a": 0.25, "b": 1.0}


def test_diffusers_layouts_before_peft():
    unet = "unet.down_blocks.0.attentions.0.transformer_blocks.0.attn1"
    tensors = {
        f"{unet}.processor.to_out_lora.down.weight": torch.zeros(4, 8),
        f"{unet}.processor.to_out_lora.up.weight": torch.zeros(8, 4),
        f"{unet}.to_q.lora.down.weight": torch.zeros(4, 8),
        f"{unet}.to_q.lora.up.weight": torch.zeros(8, 4),
        "text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.down.weight": (
            torch.zeros(4, 8)
        ),
        "text_encoder.text_model.encoder.layers.0.mlp.fc1.lora_linear_layer.up.weight": (
            torch.zeros(8, 4)
        ),
    }
    lora = parse_lora(Path("x"), tensors, {})
    assert lora.format == "diffusers"
    assert {(la.component, la.module) for la in lora.layers} == {
        ("unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0"),
        ("unet", "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"),
        ("te", "text_model.encoder.layers.0.mlp.fc1"),
    }


def test_peft_alpha_comes_from_diffusers_metadata():
    to_q = "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q"
    tensors = {
        f"unet.{to_q}.lora_A.weight": torch.zeros(4, 8),
        f"unet.{to_q}.lora_B.weight": torch.zeros(8, 4),
        "base_model.model.up_blocks.1.attentions.0.proj_in.lora_A.default.weight": torch.zeros(
            2, 8
        ),
        "base_model.model.up_blocks.1.attentions.0.proj_in.lora_B.default.weight": torch.zeros(
            8, 2
        ),
        "text_encoder.encoder.layers.0.self_attn.q_proj.lora_A.weight": torch.zeros(4, 8),
        "text_encoder.encoder.layers.0.self_attn.q_proj.lora_B.weight": torch.zeros(8, 4),
    }
    config = {
        "unet.lora_alpha": 8,
        "unet.alpha_pattern": {"proj_in": 1},
        "text_encoder.lora_alpha": 16,
        "text_encoder.use_rslora": True,
    }
    lora = parse_lora(Path("x"), tensors, {"lora_adapter_metadata": json.dumps(config)})
    assert lora.format == "peft"
    scales = {la.module: la.scale for la in lora.layers}
    assert scales == {
        to_q: 8 / 4,
        "up_blocks.1.attentions.0.proj_in": 1 / 2,
        "encoder.layers.0.self_attn.q_proj": 16 / 4**0.5,
    }
    assert parse_lora(Path("x"), tensors, {}).layers[0].scale == 1.0  # no metadata: alpha = rank


@pytest.mark.parametrize(
    ("key", "what"),
    [
        ("lora_unet_down_blocks_0_attentions_0_proj_in.hada_w1_a", "LoHa"),
        ("lora_unet_down_blocks_0_attentions_0_proj_in.lokr_w1", "LoKr"),
        ("lora_unet_down_blocks_0_attentions_0_proj_in.lokr_w1_a", "LoKr"),
    ],
)
def test_loha_and_lokr_are_refused_by_name(tmp_path, key, what):
    path = write_lora(
        {key: torch.zeros(4, 4), "lora_unet_x.alpha": torch.tensor(1.0)},
        tmp_path / "net.safetensors",
    )
    with pytest.raises(UnsupportedLoraError) as info:
        read_lora(path)
    assert "net.safetensors" in str(info.value) and what in str(info.value)


def test_pickled_lora_is_read_with_the_weights_only_loader(tmp_path):
    path = tmp_path / "old.pt"
    torch.save(layer("lora_unet_a", 4, 4), path)
    assert [la.module for la in read_lora(path).layers] == ["a"]


def test_tags_follow_a1111_order_text_encoder_first():
    tags = lora_tags(
        "a <lora:one> b <lora:two:0.8> <lora:three:0.5:1> <lora:four:te=0.2:unet=0.3>"
        " <lora:five:1:2:8> <hypernet:x:1>"
    )
    assert tags == [
        LoraTag("one", 1.0, 1.0),
        LoraTag("two", 0.8, 0.8),
        LoraTag("three", 0.5, 1.0),
        LoraTag("four", 0.2, 0.3),
        LoraTag("five", 1.0, 2.0),  # the 4th item (A1111's dynamic rank) does nothing
    ]
    with pytest.raises(InvalidRequestError, match="six"):
        lora_tags("<lora:six:strong>")
