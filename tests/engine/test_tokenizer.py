"""The CLIP tokenizer: ids, chunking, and parity with transformers' CLIPTokenizer."""

from __future__ import annotations

import gzip
import html
import json
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import engine
from engine import resources
from engine.errors import MissingComponentError
from engine.resources import resource_path
from engine.text import tokenizer as tokenizer_module
from engine.text.tokenizer import (
    END_ID,
    END_TOKEN,
    MERGES_RESOURCE,
    NUM_MERGES,
    START_ID,
    START_TOKEN,
    VOCAB_SIZE,
    ClipTokenizer,
    byte_alphabet,
    chunk_counts,
    get_tokenizer,
    read_merges,
)

ASTRONAUT = "a photograph of an astronaut riding a horse"
ASTRONAUT_IDS = [49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407]

CORPUS = [
    ASTRONAUT,
    "",
    "   ",
    "Hello, World!!! (masterpiece:1.2), [best quality], {hi-res} <lora:x:0.5>",
    "1girl, 2 cats, 3.14159, 1,000,000 and 2024-01-01 12:30",
    "it's they're we've I'm you'll he'd DON'T WON'T o'clock rock'n'roll",
    "Привет мир, Москва ночью",
    "Ελληνικά γράμματα: αβγ ΑΒΓ, ΟΔΟΣ ΣΟΦΟΣ",  # word-final capital sigma
    "\u0448\u0345 combining ypogegrammeni",  # case-folds to a letter: kept, as transformers does
    "\x1cseparators\x1f are not whitespace\x1d",
    "你好世界 東京の夜景 한국어 텍스트",
    "مرحبا بالعالم שלום עולם हिन्दी",
    "emoji 😀🎉👍🏽 👨‍👩‍👧 ❤️ 🇫🇷",
    "  multiple   spaces\n\nnew\nlines\t\ttabs\r\n ",
    "Tom &amp; Jerry &lt;3 &#39;quoted&#39; &quot;x&quot; &amp;amp;",
    "café naïve Zoë façade Straße ﬁne İstanbul",
    "cafe\u0301 composed by NFC",
    "x² ½ ٣ 〇 Ⅻ ①",
    "zero\u200bwidth non\u00a0breaking ideo\u3000space",
    "<|startoftext|> tokens <|endoftext|> inside",
    "UPPER lower MiXeD CaSe",
    "a very long prompt, " * 40,
    "supercalifragilisticexpialidocious antidisestablishmentarianism",
    "~!@#$%^&*()_+`-=[]\\{}|;':\",./<>?",
]


@pytest.fixture(scope="module")
def tok() -> ClipTokenizer:
    return get_tokenizer()


@pytest.fixture(scope="module")
def hf_tokenizer(tmp_path_factory, tok):
    """transformers' CLIPTokenizer from vocab.json + merges.txt written from the same data."""
    from transformers import CLIPTokenizer

    folder = tmp_path_factory.mktemp("hf_clip")
    merges = read_merges(resource_path(*MERGES_RESOURCE))
    (folder / "vocab.json").write_text(json.dumps(tok.vocab, ensure_ascii=False), "utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", "utf-8")
    return CLIPTokenizer.from_pretrained(str(folder))


def hf_ids(hf, text: str) -> list[int]:
    # transformers does not unescape HTML (CLIP does, and so do we): give it unescaped text.
    return hf(html.unescape(html.unescape(text)), add_special_tokens=False).input_ids


def test_design_example(tok):
    rows = tok.chunk_ids(ASTRONAUT)
    assert rows == [ASTRONAUT_IDS + [END_ID] * (77 - len(ASTRONAUT_IDS))]
    assert tok.encode(ASTRONAUT) == ASTRONAUT_IDS[1:-1]


def test_vocabulary_layout(tok):
    alphabet = byte_alphabet()
    assert len(alphabet) == len(set(alphabet)) == 256
    assert len(tok.vocab) == VOCAB_SIZE
    assert tok.vocab["!"] == 0
    assert tok.vocab["a</w>"] == 256 + tok.vocab["a"] == 320
    assert tok.vocab["in"] == 512  # the first merge is "i n"
    assert tok.vocab[START_TOKEN] == START_ID == 49406
    assert tok.vocab[END_TOKEN] == END_ID == 49407


def test_shipped_merges_are_small_and_complete():
    path = resource_path(*MERGES_RESOURCE)
    assert path.is_file() and path.stat().st_size < 1_000_000
    first = gzip.open(path, "rt", encoding="utf-8").readline()
    assert first.startswith("#version")
    assert len(read_merges(path)) == NUM_MERGES == 48894
    assert (path.parent / "LICENSE").read_text().startswith("MIT License")


@pytest.mark.parametrize("text", CORPUS, ids=range(len(CORPUS)))
def test_ids_match_transformers(tok, hf_tokenizer, text):
    assert tok.encode(text) == hf_ids(hf_tokenizer, text)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
# Unassigned code points (Cn) are left out: transformers drops a character that Python's
# unicodedata calls unassigned, while ``regex`` may carry a newer Unicode that assigns it (regex
# 2026.11.19 reads U+A7F1 as a letter; Python 3.11's Unicode 14 has nothing there), so the
# answer would depend on two packages' Unicode versions, not on our tokenizer.
@given(st.text(st.characters(max_codepoint=0xFFFF, exclude_categories=["Cs", "Cn"]), max_size=40))
def test_random_text_matches_transformers(tok, hf_tokenizer, text):
    assert tok.encode(text) == hf_ids(hf_tokenizer, text)


def test_html_entities_are_unescaped(tok, hf_tokenizer):
    assert tok.encode("Tom &amp; Jerry") == tok.encode("Tom & Jerry")
    assert tok.encode("&amp;amp;") == tok.encode("&")  # unescaped twice, as CLIP does
    assert tok.encode("&lt;3") != hf_tokenizer("&lt;3", add_special_tokens=False).input_ids


def test_case_and_whitespace_are_normalised(tok):
    assert tok.encode("  A\tPhotograph\n\nOF a   HORSE ") == tok.encode("a photograph of a horse")
    assert tok.encode("cafe\u0301") == tok.encode("caf\u00e9")  # NFC


def test_special_token_text_maps_to_special_ids(tok):
    assert tok.encode("a <|endoftext|> b") == [*tok.encode("a"), END_ID, *tok.encode("b")]


def test_lone_surrogates_do_not_crash(tok):
    assert tok.encode("a\ud800b") == tok.encode("a\ufffdb")


def test_empty_prompt_gives_one_row(tok):
    assert tok.chunk_ids("") == [[START_ID] + [END_ID] * 76]
    assert tok.chunk_counts("") == [0]
    assert tok.count_tokens("") == 0


@pytest.mark.parametrize("words", [1, 74, 75, 76, 150, 151, 300])
def test_long_prompts_are_chunked_not_truncated(tok, words):
    text = " ".join(["horse"] * words)  # "horse" is one token
    assert tok.count_tokens(text) == words
    rows = tok.chunk_ids(text)
    assert len(rows) == -(-words // 75)
    assert all(len(row) == 77 and row[0] == START_ID for row in rows)
    body = []
    for row, count in zip(rows, tok.chunk_counts(text), strict=True):
        assert row[count + 1 :] == [END_ID] * (76 - count)
        body += row[1 : count + 1]
    assert body == tok.encode(text)
    assert sum(tok.chunk_counts(text)) == words


def test_more_than_77_tokens_gives_two_chunks(tok):
    text = "a very long prompt, " * 20  # 5 tokens a repeat: 100 tokens
    ids = tok.encode(text)
    assert len(ids) == 100
    rows = tok.chunk_ids(text)
    assert len(rows) == 2
    assert rows[0][1:76] == ids[:75] and rows[1][1:26] == ids[75:]
    assert tok.chunk_counts(text) == [75, 25]


def test_custom_chunk_length(tok):
    rows = tok.chunk_ids(ASTRONAUT, chunk_len=3)
    assert [len(r) for r in rows] == [5, 5, 5]
    assert tok.chunk_counts(ASTRONAUT, chunk_len=3) == [3, 3, 2]


def test_module_level_counter_and_cache(tok):
    assert get_tokenizer() is tok
    assert chunk_counts(ASTRONAUT) == [8]
    assert engine.token_counts("horse " * 80) == [75, 5]


def test_resource_path_finds_the_merges_file():
    path = resource_path("clip", "bpe_merges.txt.gz")
    assert path.is_file()
    assert path == Path(__file__).resolve().parents[2] / "resources" / "clip" / "bpe_merges.txt.gz"


def test_resource_path_falls_back_to_installed_package(tmp_path, monkeypatch):
    package = tmp_path / "site" / resources.INSTALLED_PACKAGE
    (package / "clip").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "clip" / "vocab.txt").write_text("x")
    monkeypatch.setattr(resources, "_source_resources_dir", lambda: tmp_path / "nowhere")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    saved = sys.modules.pop(resources.INSTALLED_PACKAGE, None)
    try:
        assert resource_path("clip", "vocab.txt") == package / "clip" / "vocab.txt"
        with pytest.raises(FileNotFoundError, match="missing"):
            resource_path("clip", "absent.txt")
    finally:  # do not leave the fake package imported for later tests
        sys.modules.pop(resources.INSTALLED_PACKAGE, None)
        if saved is not None:
            sys.modules[resources.INSTALLED_PACKAGE] = saved


def test_missing_vocabulary_is_an_engine_error(monkeypatch):
    def absent(*parts):
        raise FileNotFoundError("/".join(parts))

    monkeypatch.setattr(tokenizer_module, "resource_path", absent)
    with pytest.raises(MissingComponentError, match="reinstall"):
        get_tokenizer.__wrapped__()


def test_truncated_vocabulary_is_an_engine_error(tmp_path):
    lines = gzip.open(resource_path(*MERGES_RESOURCE), "rt", encoding="utf-8").read().split("\n")
    damaged = tmp_path / "merges.txt"
    damaged.write_text("\n".join(lines[:1000]), encoding="utf-8")
    with pytest.raises(MissingComponentError, match="damaged"):
        ClipTokenizer.from_file(damaged)
