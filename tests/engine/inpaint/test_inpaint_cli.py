"""``latentdesk-cli img2img --mask`` and every bad input of issue 12, point 8."""

import io
import json
import struct
import zlib
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from engine import GenerationRequest
from engine.cli import main
from engine.errors import ImageError, InvalidRequestError
from engine.family import SD1
from engine.inpaint.job import check_model_takes_mask
from engine.inpaint.mask_file import load_mask
from engine.validate import validate_request
from tests.engine.inpaint.conftest import SIZE, box_mask, drawn_picture
from tests.factories import tiny_sd1_state_dict, write_checkpoint


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "tiny.safetensors"
    write_checkpoint(tiny_sd1_state_dict(seed=2), path)
    return path


def _cli(ckpt, tmp_path, mask_path, *extra):
    init = tmp_path / "picture.png"
    Image.fromarray(drawn_picture()).save(init)
    return [
        "img2img",
        *("--ckpt", str(ckpt), "--outdir", str(tmp_path / "out"), "--prompt", "a cat"),
        *("--H", str(SIZE), "--W", str(SIZE), "--steps", "4", "--precision", "full"),
        *("--seed", "3", "--json", "--init-img", str(init), "--mask", str(mask_path)),
        *extra,
    ]


def test_cli_inpaints_with_every_flag(ckpt, tmp_path, capsys):
    # Half the size of the picture, and transparent where it keeps: alpha is the mask.
    mask = np.zeros((SIZE // 2, SIZE // 2, 4), np.uint8)
    mask[8:24, 8:24, 3] = 255
    mask_path = tmp_path / "mask.png"
    Image.fromarray(mask, "RGBA").save(mask_path)
    extra = ("--mask-blur", "2", "--masked-content", "fill", "--inpaint-area", "masked")
    args = _cli(ckpt, tmp_path, mask_path, *extra, "--padding", "8", "--strength", "0.8")
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert any("the mask was scaled to the image" in note for note in summary["notes"])
    (entry,) = summary["images"]
    with Image.open(entry["path"]) as image:
        params = image.info["parameters"]
        out = np.asarray(image.convert("RGB"))
    for text in (
        "Mask blur: 2",
        "Masked content: fill",
        "Inpaint area: Only masked",
        "Masked area padding: 8",
        "Denoising strength: 0.8",
    ):
        assert text in params
    picture = drawn_picture()
    keep = np.ones((SIZE, SIZE), bool)
    keep[10:54, 10:54] = False  # the scaled box (16..48) and its 2-pixel feather, with margin
    assert np.array_equal(out[keep], picture[keep])
    assert np.abs(out[20:44, 20:44].astype(int) - picture[20:44, 20:44]).mean() > 10


def _claims(width, height):
    """A tiny PNG whose header claims ``width`` x ``height``: a decompression bomb's shape."""
    buffer = io.BytesIO()
    Image.new("L", (1, 1)).save(buffer, "PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not a picture at all\n", "The mask cannot be used"),
        (_claims(30000, 30000), "too large"),
        ("empty", "nothing to repaint"),
    ],
)
def test_cli_refuses_bad_masks_with_one_line(ckpt, tmp_path, capsys, content, message):
    mask_path = tmp_path / "mask.png"
    if content == "empty":
        Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(mask_path)
    else:
        mask_path.write_bytes(content)
    assert main(_cli(ckpt, tmp_path, mask_path)) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and "Traceback" not in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_mask_file_refusals_name_the_mask(tmp_path):
    with pytest.raises(ImageError, match="The mask cannot be used.*does not exist"):
        load_mask(tmp_path / "missing.png")
    with pytest.raises(ImageError, match="The mask cannot be used.*not an image"):
        load_mask(b"<html>")


def test_mask_alpha_is_the_mask_and_grey_files_are_read():
    rgba = np.zeros((8, 8, 4), np.uint8)
    rgba[:, :, :3] = 255  # white everywhere: only the alpha tells what to repaint
    rgba[2:4, 2:4, 3] = 255
    buffer = io.BytesIO()
    Image.fromarray(rgba, "RGBA").save(buffer, "PNG")
    assert np.array_equal(load_mask(buffer.getvalue()), box_mask(2, 2, 4, 4, size=8))
    buffer = io.BytesIO()
    Image.fromarray(box_mask(1, 1, 5, 5, size=8), "L").save(buffer, "PNG")
    assert np.array_equal(load_mask(buffer.getvalue()), box_mask(1, 1, 5, 5, size=8))


def _request(**kw):
    base = dict(width=SIZE, height=SIZE, init_image=drawn_picture(), mask=box_mask(8, 8, 24, 24))
    return GenerationRequest("a cat", **{**base, **kw})


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"mask": np.zeros((SIZE, SIZE), np.uint8)}, "nothing to repaint"),
        ({"init_image": None}, "A mask needs an init image"),
        ({"mask": np.zeros((4, 4), np.float32)}, "8 bits per channel"),
        ({"masked_content": "blur"}, "Unknown masked content"),
        ({"inpaint_area": "edges"}, "Unknown inpaint area"),
        ({"mask_blur": -1}, "Mask blur must be"),
        ({"inpaint_padding": 1000}, "Masked area padding must be"),
    ],
)
def test_bad_requests_are_refused_before_any_work(fields, message):
    with pytest.raises(InvalidRequestError, match=message):
        validate_request(_request(**fields))


def test_all_white_mask_runs_as_plain_img2img_with_a_note(normal_engine):
    full = np.full((SIZE, SIZE), 255, np.uint8)
    kw = dict(steps=4, seed=9, sampler="euler", strength=0.7)
    masked = normal_engine.generate(_request(mask=full, **kw))
    plain = normal_engine.generate(_request(mask=None, **kw))
    assert any("plain img2img" in note for note in masked.notes)
    assert np.array_equal(masked.images[0].image, plain.images[0].image)


def test_a_model_without_room_for_a_mask_is_refused():
    """A UNet whose input is neither latents (4) nor latents + mask + masked image (9), as an
    8-channel instruct-pix2pix one: a mask has no place there."""
    bundle = SimpleNamespace(family=SD1, unet_config=SimpleNamespace(in_channels=8))
    with pytest.raises(InvalidRequestError, match="8 input channels.*no room"):
        check_model_takes_mask(bundle)
    for channels in (4, 9):
        check_model_takes_mask(
            SimpleNamespace(family=SD1, unet_config=SimpleNamespace(in_channels=channels))
        )
