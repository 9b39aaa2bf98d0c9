"""Weighted encoding (emphasis, BREAK, embeddings) on a tiny random CLIP, against A1111's
algorithm (tests/engine/prompts/a1111_reference.py) and against today's plain encoding."""

from __future__ import annotations

import pickle
import random

import pytest
import torch
from safetensors.torch import save_file
from transformers import CLIPTextModel

from engine.errors import EmbeddingError
from engine.prompts.tokens import count_tokens
from engine.text.embeddings import load_embedding
from engine.text.encoder import TextEncoder
from engine.text.prompt_conditioning import encode_prompt_pair
from engine.text.weighted import chunk_texts, encode_weighted
from tests.engine.prompts.a1111_reference import (
    original_emphasis,
    parse_prompt_attention,
    tokenize_line,
)
from tests.factories import CLIP_PREFIX, random_weights, shapes_of, tiny_clip_config

WIDTH = 64  # the tiny text encoder's hidden size
PROMPTS = [
    "a photograph of an astronaut riding a horse",
    "",
    "Ünïcödé, 123 😀: a x: y) b]",  # colons and closing brackets alone are plain text
    "a very long prompt " * 25,  # two chunks, no comma near the cut
]


@pytest.fixture(scope="module")
def encoder() -> TextEncoder:
    with torch.device("meta"):
        shapes = shapes_of(CLIPTextModel(tiny_clip_config()))
    sd = random_weights({CLIP_PREFIX + k.removeprefix("text_model."): s for k, s in shapes.items()})
    return TextEncoder.from_state_dict(sd, prefix="cond_stage_model.transformer.")


def vectors(n: int, seed: int, width: int = WIDTH) -> torch.Tensor:
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed))


def write_pt(path, tensor):
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": tensor}, "name": "x"}, path)
    return path


# --- no syntax: exactly today's encoding ------------------------------------------------------


@pytest.mark.parametrize("clip_skip", [1, 2])
def test_plain_prompts_give_todays_tensors_bit_for_bit(encoder, clip_skip):
    for prompt in PROMPTS[:3]:
        for negative in ("", PROMPTS[3]):
            cond, uncond = encoder.encode_prompts(prompt, negative, clip_skip=clip_skip)
            ours = encode_weighted(encoder, [prompt, negative], clip_skip=clip_skip)
            assert torch.equal(ours[0], cond) and torch.equal(ours[1], uncond), prompt
            pair = encode_prompt_pair(encoder, prompt, negative, steps=20, clip_skip=clip_skip)
            assert torch.equal(pair.cond.at_step(1).context, cond)
            assert torch.equal(pair.uncond.at_step(20).context, uncond)


def test_weight_one_is_the_plain_word(encoder):
    plain = encode_weighted(encoder, ["a red (barn) at dusk", "a red barn at dusk"])
    ours = encode_weighted(encoder, ["a red (barn:1.0) at dusk", "a red barn at dusk"])
    assert torch.equal(ours[0], plain[1])
    assert not torch.equal(plain[0], plain[1])  # (barn) is 1.1: it does change something


def test_without_comma_backtrack_long_prompts_chunk_as_before(encoder):
    """A1111 moves the words after a late comma to the next chunk; backtrack 0 is the plain
    75-token cut that encode_prompts makes."""
    prompt = "word " * 70 + ", " + "tail " * 10
    cond, _ = encoder.encode_prompts(prompt, "")
    assert torch.equal(encode_weighted(encoder, [prompt, ""], comma_backtrack=0)[0], cond)
    assert not torch.equal(encode_weighted(encoder, [prompt, ""])[0], cond)


# --- emphasis: A1111's algorithm ---------------------------------------------------------------


def a1111_encode(encoder: TextEncoder, prompt: str, embeddings=None) -> torch.Tensor:
    """A1111's path: its chunks, one transformer call per chunk, "Original" emphasis."""
    tok = encoder.tokenizer
    counts = {n: len(v) for n, v in (embeddings or {}).items()}
    chunks, _ = tokenize_line(prompt, tok.encode, tok.vocab[",</w>"], counts)
    zs = []
    for chunk in chunks:
        layer = encoder.model.get_input_embeddings()

        def fix(_m, _i, out, chunk=chunk):
            out = out.clone()
            for offset, name in chunk["fixes"]:
                vec = embeddings[name]
                out[0, offset + 1 : offset + 1 + len(vec)] = vec
            return out

        handle = layer.register_forward_hook(fix)
        try:
            z = encoder.encode(torch.tensor([chunk["tokens"]]))  # (1, 77, D)
        finally:
            handle.remove()
        zs.append(original_emphasis(z, torch.tensor([chunk["multipliers"]])))
    return torch.cat(zs, dim=1)  # (1, 77C, D)


CORPUS = [
    "a (red) barn",
    "((masterpiece)), [[blurry]], (cat:1.6) and (dog:0.4)",
    "a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
    "(unbalanced and [also unbalanced",
    "\\(literal\\) (a:b) (:1.2) x:1.5) ]",
    "first part BREAK (second:1.3) part BREAK BREAK third",
    ", ".join(f"(word{i}:1.{i % 9})" for i in range(40)),  # commas near chunk ends
    "(a long emphasised prompt " * 20 + ")",
]


@pytest.mark.parametrize("prompt", CORPUS)
def test_emphasis_matches_a1111(encoder, prompt):
    ours = encode_weighted(encoder, [prompt])[0]
    torch.testing.assert_close(ours, a1111_encode(encoder, prompt), rtol=0, atol=2e-5)


def test_random_prompts_match_a1111(encoder):
    rnd = random.Random(11)
    pieces = ["cat", "sky", ",", "(", ")", "[", "]", ":1.4)", "(x:0.7)", " BREAK ", "blue"]
    done = 0
    while done < 12:
        prompt = " ".join(rnd.choice(pieces) for _ in range(rnd.randint(3, 60)))
        if any(t == "BREAK" and w != -1 for t, w in parse_prompt_attention(prompt)):
            continue  # BREAK inside brackets: A1111 encodes the word "break" (see prompts tests)
        ours = encode_weighted(encoder, [prompt])[0]
        torch.testing.assert_close(ours, a1111_encode(encoder, prompt), rtol=0, atol=2e-5)
        done += 1


def test_a_weighted_chunk_keeps_its_unweighted_mean(encoder):
    plain = encoder.encode_prompts("a cat on a mat", "")[0]
    weighted = encode_weighted(encoder, ["a (cat:1.8) on a [mat]"])[0]
    chunk = encode_weighted(encoder, ["a cat on a mat"])[0]
    assert torch.equal(chunk, plain)
    torch.testing.assert_close(weighted.mean(), plain.mean(), rtol=1e-5, atol=1e-6)
    assert (weighted - plain).abs().max() > 1e-2


def test_break_starts_a_new_chunk(encoder):
    (states,) = encode_weighted(encoder, ["a cat BREAK a dog"])
    assert states.shape == (1, 154, WIDTH)
    first, second = encode_weighted(encoder, ["a cat", "a dog"])
    torch.testing.assert_close(states[:, :77], first, rtol=0, atol=1e-6)
    torch.testing.assert_close(states[:, 77:], second, rtol=0, atol=1e-6)


# --- embeddings -------------------------------------------------------------------------------


def test_embedding_vectors_reach_the_encoder_in_place_of_the_name(encoder, tmp_path):
    """Encoding "a <emb> cat" with a 3-vector embedding equals encoding three new tokens whose
    token-embedding rows are those vectors: the vectors enter before the position embeddings
    and the transformer, exactly where the name was."""
    vec = vectors(3, seed=1)
    emb = load_embedding(write_pt(tmp_path / "shiny.pt", vec))
    (ours,) = encode_weighted(encoder, ["a shiny cat"], {"shiny": emb})
    free = [100, 101, 102]  # token ids not in the prompt
    tok = encoder.tokenizer
    row = [49406, *tok.encode("a"), *free, *tok.encode("cat"), 49407]
    row += [49407] * (77 - len(row))
    table = encoder.model.get_input_embeddings().weight
    saved = table[free].clone()
    try:
        with torch.no_grad():
            table[free] = vec
        expected = encoder.encode(torch.tensor([row]))
    finally:
        with torch.no_grad():
            table[free] = saved
    torch.testing.assert_close(ours, expected, rtol=0, atol=1e-6)
    assert ours.shape == (1, 77, WIDTH)


def test_embedding_in_the_negative_prompt_with_weight_matches_a1111(encoder, tmp_path):
    vec = vectors(2, seed=2)
    emb = load_embedding(write_pt(tmp_path / "bad-hands.pt", vec))
    prompt = "ugly, (bad-hands:1.3), blurry"
    (ours,) = encode_weighted(encoder, [prompt], {"bad-hands": emb})
    expected = a1111_encode(encoder, prompt, {"bad-hands": vec})
    torch.testing.assert_close(ours, expected, rtol=0, atol=2e-5)


@pytest.mark.parametrize("layout", ["pt", "safetensors", "diffusers-1d", "diffusers-2d"])
def test_embedding_file_layouts(tmp_path, layout):
    vec = vectors(1 if layout == "diffusers-1d" else 4, seed=3)
    if layout == "pt":
        path = write_pt(tmp_path / "e.pt", vec)
    elif layout == "safetensors":
        path = tmp_path / "e.safetensors"
        save_file({"emb_params": vec}, path)
    else:
        path = tmp_path / "learned_embeds.bin"
        torch.save({"<e>": vec[0] if layout == "diffusers-1d" else vec}, path)
    emb = load_embedding(path)
    assert torch.equal(emb.vectors, vec.reshape(-1, WIDTH)) and emb.name == path.stem


def test_a_wrong_width_embedding_is_refused_by_name(encoder, tmp_path):
    path = tmp_path / "sd2style.safetensors"
    save_file({"emb_params": vectors(2, seed=4, width=1024)}, path)
    files = {"sd2style": path}
    with pytest.raises(EmbeddingError) as e:
        encode_prompt_pair(encoder, "a sd2style cat", "", steps=4, embedding_files=files)
    message = str(e.value)
    assert "sd2style" in message and "SD2" in message and "1024" in message and "64" in message


def test_an_sdxl_embedding_is_refused_by_name(tmp_path):
    path = tmp_path / "xl.safetensors"
    save_file({"clip_l": vectors(2, 5, 768), "clip_g": vectors(2, 6, 1280)}, path)
    with pytest.raises(EmbeddingError, match="xl .*SDXL"):
        load_embedding(path)


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch PWNED",))


@pytest.mark.filterwarnings("ignore:Detected pickle protocol")
def test_a_pt_that_wants_to_run_code_is_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    with open(path, "wb") as f:
        pickle.dump({"string_to_param": {"*": _RunsCode()}}, f)
    with pytest.raises(EmbeddingError, match="evil.*refused"):
        load_embedding(path)
    assert not (tmp_path / "PWNED").exists()


def test_embeddings_are_cached_until_the_file_changes(tmp_path):
    path = write_pt(tmp_path / "c.pt", vectors(1, seed=7))
    first = load_embedding(path)
    assert load_embedding(path) is first
    write_pt(path, vectors(2, seed=8))
    second = load_embedding(path)
    assert second.count == 2 and second.short_hash != first.short_hash


def test_only_the_embeddings_a_prompt_names_are_loaded(encoder, tmp_path):
    broken = tmp_path / "broken.pt"
    broken.write_bytes(b"not a pickle")
    good = write_pt(tmp_path / "good.pt", vectors(2, seed=9))
    files = {"broken": broken, "good": good}
    pair = encode_prompt_pair(encoder, "a cat", "good", steps=4, embedding_files=files)
    assert [e.name for e in pair.embeddings] == ["good"]
    import hashlib

    assert pair.ti_hashes == f"good: {hashlib.sha256(good.read_bytes()).hexdigest()[:12]}"
    with pytest.raises(EmbeddingError, match="broken"):
        encode_prompt_pair(encoder, "a broken cat", "", steps=4, embedding_files=files)


def test_count_tokens_agrees_with_what_is_encoded(encoder, tmp_path):
    emb = load_embedding(write_pt(tmp_path / "style.pt", vectors(6, seed=10)))
    for prompt in [*CORPUS, "style " * 20, "a <lora:x:1> style, (cat) BREAK dog"]:
        count = count_tokens(prompt, {"style": 6})
        pair = encode_prompt_pair(
            encoder, prompt, "", steps=4, embedding_files={"style": tmp_path / "style.pt"}
        )
        assert pair.cond.at_step(1).context.shape[1] == 77 * count.chunks, prompt
        (chunks,) = chunk_texts(encoder, [prompt.replace("<lora:x:1>", "")], {"style": emb})
        body = sum(1 for c in chunks for t in c.tokens[1:-1] if t != 49407)
        assert body <= count.used <= 75 * count.chunks, prompt
