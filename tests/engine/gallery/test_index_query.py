"""The gallery's search syntax: what each term becomes, and that nothing typed can raise."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.gallery.index import GalleryIndex, IndexedPicture, parse_query
from engine.gallery.query import Query, exclusion_expression, match_expression


def test_every_kind_of_term():
    query = parse_query(
        'red Car "a red car" -blurry -"bad hands" model:"v1 5" sampler:euler tool:ComfyUI '
        "seed:12345678901234567890 size:512x768 after:2026-01-02 before:2026-02-01 starred"
    )
    assert query == Query(
        words=("red", "Car"),
        phrases=("a red car",),
        excluded_words=("blurry",),
        excluded_phrases=("bad hands",),
        models=("v1 5",),
        samplers=("euler",),
        tools=("ComfyUI",),
        seeds=(12345678901234567890,),
        sizes=((512, 768),),
        after=date(2026, 1, 2),
        before=date(2026, 2, 1),
        starred=True,
    )


def test_filters_that_do_not_parse_are_words():
    query = parse_query("seed:abc size:big after:yesterday before:2026-02-30 model:")
    assert query.words == ("seed:abc", "size:big", "after:yesterday", "before:2026-02-30", "model:")
    assert query.seeds == () and query.sizes == () and query.after is None


def test_two_dates_of_a_kind_narrow_the_range():
    query = parse_query("after:2026-01-01 after:2026-03-01 before:2026-12-01 before:2026-06-01")
    assert (query.after, query.before) == (date(2026, 3, 1), date(2026, 6, 1))


def test_an_unbalanced_quote_runs_to_the_end():
    assert parse_query('cat "black and white').phrases == ("black and white",)


def test_terms_without_letters_or_digits_are_dropped():
    assert parse_query('* -- " - ^ ( ) "" %') == Query()


def test_fts_syntax_reaches_fts5_only_quoted():
    query = parse_query('NEAR(a b) x* AND "c""d" {prompt}:f')
    assert match_expression(query) == (
        '"NEAR(a"* AND "b)"* AND "x*"* AND "AND"* AND "{prompt}:f"* AND "c" AND "d"'
    )
    assert exclusion_expression(parse_query('-e^ -"g h" -OR')) == '"e^"* OR "OR"* OR "g h"'


# Characters that mean something to the parser, to FTS5, to LIKE or to SQL.
_NASTY = st.text(
    alphabet=st.sampled_from(list("ab1 \"-:*^(){}%_\\'.,xX/NEARORAND\x00é")), max_size=30
)


@pytest.fixture(scope="module")
def index(tmp_path_factory):
    with GalleryIndex.open(tmp_path_factory.mktemp("fuzz") / "gallery.sqlite3") as opened:
        opened.add_records([RECORD])
        yield opened


RECORD = IndexedPicture(
    path=Path("/nowhere/a.png"),
    folder=Path("/nowhere"),
    mtime=1_700_000_000.0,
    size_bytes=1,
    width=8,
    height=8,
    tool="A1111",
    prompt='a NEAR b AND "c" OR d*, 1_2 %x',
    negative_prompt="e^f",
    model="m_1%",
    seed=1,
    sampler="Euler a",
    schedule=None,
    steps=20,
    cfg_scale=7.0,
    starred=False,
)


@settings(max_examples=200, deadline=None)
@given(text=_NASTY)
def test_nothing_typed_raises(index, text):
    assert isinstance(index.search(text), list)
    assert index.count(text) >= 0
    assert index.notice is None  # a query never passes for damage
