"""Where the library looks: every source, in order, existing folders only, each once; and
ComfyUI's extra_model_paths.yaml read safely."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.library import LibraryConfig, Place, default_places
from engine.library.places import candidate_places, comfyui_extra_paths, hf_hub_cache


def _mk(*paths: Path) -> None:
    for p in paths:
        p.mkdir(parents=True, exist_ok=True)


def test_every_source_in_order_and_only_existing_folders(tmp_path) -> None:
    home, app = tmp_path / "home", tmp_path / "data" / "models"
    user, env_dir = tmp_path / "mine", tmp_path / "from-env"
    webui, comfy = home / "stable-diffusion-webui", home / "ComfyUI"
    hub = home / ".cache" / "huggingface" / "hub"
    _mk(app, user, env_dir, hub, home / "invokeai" / "models")
    _mk(webui / "models" / "Stable-diffusion", webui / "models" / "Lora", webui / "embeddings")
    _mk(comfy / "models" / "checkpoints", comfy / "models" / "vae")
    env = {"LATENTDESK_MODEL_PATH": os.pathsep.join([str(env_dir), "", str(tmp_path / "no")])}
    config = LibraryConfig(folders=[str(user), str(tmp_path / "unplugged-disk")])

    places = default_places(config, home, env, models_dir=app)

    assert places == [
        Place(app, "app"),
        Place(user, "user"),
        Place(env_dir, "env"),
        Place(hub, "hf-cache"),
        Place(webui / "models" / "Stable-diffusion", "a1111"),
        Place(webui / "models" / "Lora", "a1111"),
        Place(webui / "embeddings", "a1111"),
        Place(comfy / "models" / "checkpoints", "comfyui"),
        Place(comfy / "models" / "vae", "comfyui"),
        Place(home / "invokeai" / "models", "invokeai"),
    ]
    _, skipped = candidate_places(config, home, env, models_dir=app)
    assert skipped == []  # missing named folders are reported by the scan, not here


def test_a_folder_reached_twice_is_listed_once_first_source_wins(tmp_path) -> None:
    home, app = tmp_path / "home", tmp_path / "models"
    real = home / "stable-diffusion-webui" / "models" / "Stable-diffusion"
    _mk(real, app)
    link = tmp_path / "link-to-a1111"
    link.symlink_to(real)
    config = LibraryConfig(folders=[str(link), str(real) + "/"])
    places = default_places(config, home, {}, models_dir=app)
    assert places == [Place(app, "app"), Place(link, "user")]


def test_tilde_and_variables_expand_against_the_given_home_and_env(tmp_path) -> None:
    home = tmp_path / "home"
    _mk(home / "sd", tmp_path / "mnt" / "models")
    env = {"LATENTDESK_MODEL_PATH": "$DISK/models", "DISK": str(tmp_path / "mnt")}
    places = default_places(LibraryConfig(folders=["~/sd"]), home, env, models_dir=tmp_path / "x")
    assert places == [Place(home / "sd", "user"), Place(tmp_path / "mnt" / "models", "env")]


def test_hugging_face_cache_location_follows_its_variables(tmp_path) -> None:
    home = tmp_path
    assert hf_hub_cache(home, {}) == home / ".cache" / "huggingface" / "hub"
    assert hf_hub_cache(home, {"XDG_CACHE_HOME": "/x"}) == Path("/x/huggingface/hub")
    assert hf_hub_cache(home, {"HF_HOME": "/hf", "XDG_CACHE_HOME": "/x"}) == Path("/hf/hub")
    env = {"HF_HUB_CACHE": "/hub", "HF_HOME": "/hf"}
    assert hf_hub_cache(home, env) == Path("/hub")


def test_comfyui_yaml_sections_base_paths_and_multi_line_values(tmp_path) -> None:
    comfy = tmp_path / "ComfyUI"
    _mk(comfy)
    yaml_path = comfy / "extra_model_paths.yaml"
    yaml_path.write_text(
        "# comments are fine\n"
        "a111:\n"
        "    base_path: ../stable-diffusion-webui/\n"
        "    checkpoints: models/Stable-diffusion\n"
        "    loras: |\n"
        "         models/Lora\n"
        "         models/LyCORIS\n"
        "    upscale_models: models/ESRGAN\n"
        "    embeddings: embeddings\n"
        "nas:\n"
        "    base_path: ~/nas\n"
        "    checkpoints: /abs/checkpoints\n"
        "    vae: vae/\n"
        "    controlnet:\n"
        "      - cn\n"
        "relative:\n"
        "    checkpoints: local-ckpts\n"
        "broken-section: just a string\n"
        "numbers:\n"
        "    base_path: 5\n"
        "    checkpoints: 7\n"
    )
    paths, skipped = comfyui_extra_paths(yaml_path, tmp_path / "home", {})
    webui = tmp_path / "stable-diffusion-webui"
    assert skipped == []
    assert paths == [
        webui / "models" / "Stable-diffusion",
        webui / "models" / "Lora",
        webui / "models" / "LyCORIS",
        webui / "embeddings",
        Path("/abs/checkpoints"),
        tmp_path / "home" / "nas" / "vae",
        tmp_path / "home" / "nas" / "cn",
        comfy / "local-ckpts",
    ]


@pytest.mark.parametrize(
    "text, reason",
    [
        ("a111:\n  checkpoints: [unclosed\n", "not valid YAML"),
        ("key: *undefined_alias\n", "not valid YAML"),
        ("!!python/object/apply:os.system ['touch marker']\n", "not valid YAML"),
        ("- a\n- b\n", "not a list of sections"),
    ],
)
def test_a_broken_yaml_is_skipped_never_raised(tmp_path, text, reason) -> None:
    yaml_path = tmp_path / "extra_model_paths.yaml"
    yaml_path.write_text(text)
    paths, skipped = comfyui_extra_paths(yaml_path, tmp_path, {})
    assert paths == [] and len(skipped) == 1
    assert skipped[0].path == str(yaml_path) and skipped[0].reason.startswith(reason)
    assert not (tmp_path / "marker").exists()


def test_an_oversized_or_binary_yaml_is_not_read(tmp_path) -> None:
    big = tmp_path / "big.yaml"
    big.write_bytes(b"a: b\n" * 300_000)
    assert comfyui_extra_paths(big, tmp_path, {})[1][0].reason.startswith("too large")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"\xff\xfe\x00garbage")
    assert "cannot be read" in comfyui_extra_paths(binary, tmp_path, {})[1][0].reason
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    assert comfyui_extra_paths(empty, tmp_path, {}) == ([], [])
