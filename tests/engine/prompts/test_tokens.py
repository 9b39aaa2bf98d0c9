"""Chunking (tokens, weights, BREAK, comma backtrack, embeddings) and the token counter."""

from __future__ import annotations

import random

import pytest

from engine.prompts.tokens import (
    EMPTY_CHUNK,
    EmbeddingNames,
    TokenCount,
    chunk_prompt,
    count_tokens,
    embedding_names_in,
)
from engine.text.tokenizer import END_ID, START_ID, get_tokenizer
from tests.engine.prompts.a1111_reference import parse_prompt_attention, tokenize_line

WORDS = ["cat", "a", "photo", "of", "golden", "retriever", "sky", "blue", "red", "big", "house"]
SYNTAX = ["(", ")", "[", "]", ":1.3)", " BREAK ", ", ", ",", "\\(", "(x:0.5)"]


def ours(text, embeddings=None, backtrack=20):
    tok = get_tokenizer()
    names = EmbeddingNames(embeddings or {}, tok)
    return chunk_prompt(text, names, tokenizer=tok, comma_backtrack=backtrack)


def oracle(text, embeddings=None, backtrack=20):
    tok = get_tokenizer()
    return tokenize_line(text, tok.encode, tok.vocab[",</w>"], embeddings, backtrack)


def break_in_brackets(text):
    """A1111 turns such a BREAK into the word "break" (see test_attention); we break."""
    return any(t == "BREAK" and w != -1 for t, w in parse_prompt_attention(text))


def same_as_a1111(text, embeddings=None, backtrack=20):
    chunks, used = ours(text, embeddings, backtrack)
    expected, expected_used = oracle(text, embeddings, backtrack)
    assert used == expected_used, text
    assert [c.tokens for c in chunks] == [tuple(c["tokens"]) for c in expected], text
    assert [c.weights for c in chunks] == [tuple(c["multipliers"]) for c in expected], text
    fixes = [tuple((o + 1, n) for o, n in c["fixes"]) for c in expected]  # +1: start token
    assert [c.embeddings for c in chunks] == fixes, text
    return chunks


def random_prompt(rnd, length, extra=()):
    pieces = WORDS + SYNTAX + list(extra)
    return " ".join(rnd.choice(pieces) for _ in range(length))


def test_emphasis_break_and_comma_backtrack_agree_with_a1111():
    """300 prompts of 5-160 pieces (so up to three chunks): same tokens, weights, counts."""
    rnd = random.Random(5)
    checked = 0
    while checked < 300:
        text = random_prompt(rnd, rnd.randint(5, 160))
        if break_in_brackets(text):
            continue
        for backtrack in (20, 0, 5):
            same_as_a1111(text, backtrack=backtrack)
        checked += 1


def test_embeddings_agree_with_a1111():
    embeddings = {"easynegative": 8, "bad-hands-5": 2, "style": 1, "long_one": 40}
    rnd = random.Random(6)
    words = WORDS + ["(", ")", "[", "]", ":1.3)", " BREAK "]
    checked = 0
    while checked < 200:
        text = " ".join(rnd.choice(words + list(embeddings)) for _ in range(rnd.randint(1, 90)))
        if not break_in_brackets(text):
            same_as_a1111(text, embeddings)
            checked += 1


def test_a_comma_moves_the_words_after_it_to_the_next_chunk():
    text = "word " * 70 + ", " + "tail " * 10  # the comma is token 71
    chunks, used = ours(text)
    assert chunks[0].tokens[71] == get_tokenizer().vocab[",</w>"]
    assert chunks[0].tokens[72:] == (END_ID,) * 5  # padded after the comma
    assert chunks[1].tokens[1:11] == chunks[1].tokens[1:2] * 10
    assert used == 75 + 10
    plain, _ = ours(text, backtrack=0)
    assert plain[0].tokens[72] != END_ID  # without backtrack the chunk is simply cut


def test_break_pads_the_chunk_and_weights_stay_with_their_tokens():
    (first, second), used = ours("a (cat:1.5) BREAK [dog]")
    assert first.tokens[:4] == (START_ID, 320, 2368, END_ID) and first.tokens[4:] == (END_ID,) * 73
    assert first.weights[:3] == (1.0, 1.0, 1.5)
    assert second.tokens[1] == get_tokenizer().encode("dog")[0]
    assert second.weights[1] == pytest.approx(1 / 1.1)
    assert used == 75 + 1


def test_an_embedding_never_straddles_two_chunks():
    chunks, used = ours("word " * 70 + "emb", {"emb": 8})
    assert chunks[0].embeddings == ()
    assert chunks[1].embeddings == ((1, "emb"),)
    assert chunks[1].tokens[1:9] == (0,) * 8
    assert used == 75 + 8


def test_an_embedding_moved_by_a_comma_goes_with_its_tokens():
    """A1111 leaves the fix behind in the old chunk (its vectors land on padding there and the
    moved placeholders encode the token "!"); we move the embedding with its tokens."""
    text = "word " * 60 + ", " + "x " * 5 + "emb " + "y " * 15
    chunks, _ = ours(text, {"emb": 3})
    assert chunks[0].embeddings == ()
    ((position, name),) = chunks[1].embeddings
    assert name == "emb" and chunks[1].tokens[position : position + 3] == (0, 0, 0)
    expected, _ = oracle(text, {"emb": 3})
    assert expected[0]["fixes"] and not expected[1]["fixes"]  # A1111's slip


def test_embedding_names_match_by_tokens_longest_first():
    found = embedding_names_in(["an EasyNegative face", "plain"], ["easynegative", "easy", "x"])
    assert found == ["easynegative"]
    assert embedding_names_in(["(easy:1.2)"], ["easynegative", "easy"]) == ["easy"]


def test_empty_prompt_is_one_empty_chunk():
    chunks, used = ours("")
    assert chunks == [EMPTY_CHUNK] and used == 0


@pytest.mark.parametrize(
    ("prompt", "vectors", "expected"),
    [
        ("a photo of a cat", None, TokenCount(5, 1)),
        ("a (photo:1.4) of [a] ((cat))", None, TokenCount(5, 1)),  # brackets count nothing
        ("a photo <lora:detail:0.8> of a cat", None, TokenCount(5, 1)),  # tags count nothing
        ("a photo BREAK cat", None, TokenCount(76, 2)),  # BREAK fills the chunk
        ("easynegative, cat", {"easynegative": 8}, TokenCount(10, 1)),  # vectors, not name
        ("easynegative, cat", None, TokenCount(4, 1)),  # unknown: the name's own tokens
        ("easynegative, cat", {"easynegative": 0}, TokenCount(4, 1)),  # impossible counts
        ("easynegative, cat", {"easynegative": 99}, TokenCount(4, 1)),
        ("a [cat:big dog house:5]", None, TokenCount(4, 1)),  # the longest variant
        ("word " * 80, None, TokenCount(80, 2)),
        ("", None, TokenCount(0, 1)),
    ],
)
def test_count_tokens(prompt, vectors, expected):
    assert count_tokens(prompt, vectors) == expected
    assert expected.limit == 75 * expected.chunks


def test_count_tokens_is_fast_enough_for_every_keystroke():
    import time

    prompt = ", ".join(["(masterpiece:1.2)", "best quality", "[a|b] cat"] * 20)
    count_tokens(prompt)
    start = time.perf_counter()
    for _ in range(20):
        count_tokens(prompt + "x")
    assert (time.perf_counter() - start) / 20 < 0.05
