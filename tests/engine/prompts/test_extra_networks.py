from engine.prompts.extra_networks import split_extra_networks


def test_tags_leave_the_text_around_them():
    text, tags = split_extra_networks("a cat, <lora:film grain:0.8>, sharp")
    assert text == "a cat, , sharp"
    assert [(t.kind, t.name, t.positional[1:]) for t in tags] == [("lora", "film grain", ("0.8",))]
    assert tags[0].span == (7, 28)


def test_named_items_and_several_tags():
    text, tags = split_extra_networks("<LoRA:a:te=0.5:unet=1><hypernet:b>x")
    assert text == "x"
    assert tags[0].kind == "lora" and tags[0].named == {"te": "0.5", "unet": "1"}
    assert tags[1].kind == "hypernet" and tags[1].name == "b"


def test_not_tags():
    for prompt in ("a <b> c", "<lora:>", "x < y > z", "<:a:1>", "(a:1.2)"):
        assert split_extra_networks(prompt) == (prompt, [])
