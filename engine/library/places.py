"""Where models already are on this computer: the folders the library scans, in order.

The app's own models folder, the folders the person added, ``LATENTDESK_MODEL_PATH``, the
Hugging Face cache, and the usual install places of A1111, ComfyUI (with the folders its
``extra_model_paths.yaml`` names) and InvokeAI under the home folder. Nothing here writes
anywhere; ``home`` and ``env`` are explicit so tests never look at the real ones.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from engine.library.config import LibraryConfig, app_models_dir
from engine.library.records import Place, Skipped

MODEL_PATH_VAR = "LATENTDESK_MODEL_PATH"
A1111_FOLDERS = ("models/Stable-diffusion", "models/Lora", "models/VAE", "embeddings")
COMFYUI_FOLDERS = ("models/checkpoints", "models/loras", "models/vae", "models/embeddings")
# Categories of extra_model_paths.yaml that hold files this library knows.
COMFYUI_CATEGORIES = ("checkpoints", "diffusers", "loras", "vae", "embeddings", "controlnet")
MAX_YAML_BYTES = 1024 * 1024  # a real one is a few kB

Env = Mapping[str, str]


@dataclass(frozen=True)
class Candidate:
    """A folder that may hold models; ``named`` when a person or a config file named it, so
    that its absence is worth telling (a missing default A1111 folder is not)."""

    place: Place
    named: bool = False


def default_places(
    config: LibraryConfig | None = None,
    home: Path | None = None,
    env: Env | None = None,
    *,
    models_dir: Path | None = None,
) -> list[Place]:
    """The existing folders among the candidates, each once (by real path), in order."""
    candidates, _ = candidate_places(config, home, env, models_dir=models_dir)
    places, _ = existing_places(candidates)
    return places


def candidate_places(
    config: LibraryConfig | None = None,
    home: Path | None = None,
    env: Env | None = None,
    *,
    models_dir: Path | None = None,
) -> tuple[list[Candidate], list[Skipped]]:
    """Every folder to look at, whether or not it exists, and the config files that could not be
    read. Only small files (extra_model_paths.yaml, the HF refs) are read here."""
    config = config or LibraryConfig()
    home = home if home is not None else Path.home()
    env = os.environ if env is None else env
    found = [Candidate(Place(models_dir or app_models_dir(), "app"))]
    found += [Candidate(Place(expand_path(f, home, env), "user"), True) for f in config.folders]
    paths = env.get(MODEL_PATH_VAR, "").split(os.pathsep)
    found += [Candidate(Place(expand_path(p, home, env), "env"), True) for p in paths if p.strip()]
    found.append(Candidate(Place(hf_hub_cache(home, env), "hf-cache")))
    webui = home / "stable-diffusion-webui"
    found += [Candidate(Place(webui / sub, "a1111")) for sub in A1111_FOLDERS]
    comfy = home / "ComfyUI"
    found += [Candidate(Place(comfy / sub, "comfyui")) for sub in COMFYUI_FOLDERS]
    extra, skipped = comfyui_extra_paths(comfy / "extra_model_paths.yaml", home, env)
    found += [Candidate(Place(p, "comfyui"), True) for p in extra]
    found.append(Candidate(Place(home / "invokeai" / "models", "invokeai")))
    return found, skipped


def existing_places(candidates: list[Candidate]) -> tuple[list[Place], list[Skipped]]:
    """Folders that exist, once each by real path (the first source wins); named folders that
    are missing are reported."""
    places, skipped, seen = [], [], set()
    for c in candidates:
        real = os.path.realpath(c.place.path)
        if not os.path.isdir(real):
            if c.named:
                skipped.append(Skipped(str(c.place.path), "folder not found"))
            continue
        if real not in seen:
            seen.add(real)
            places.append(c.place)
    return places, skipped


def hf_hub_cache(home: Path, env: Env) -> Path:
    """huggingface_hub's cache folder, by its own precedence of variables."""
    for var in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if env.get(var):
            return expand_path(env[var], home, env)
    if env.get("HF_HOME"):
        return expand_path(env["HF_HOME"], home, env) / "hub"
    xdg = env.get("XDG_CACHE_HOME")
    base = expand_path(xdg, home, env) if xdg else home / ".cache"
    return base / "huggingface" / "hub"


_VAR = re.compile(r"\$(\w+)|\$\{(\w+)\}")


def expand_path(path: str, home: Path, env: Env) -> Path:
    """``~`` and ``$VAR`` as a shell would expand them, against the given home and env."""
    path = _VAR.sub(lambda m: env.get(m.group(1) or m.group(2), m.group(0)), path.strip())
    if path == "~" or path.startswith(("~/", "~" + os.sep)):
        return home / path[2:]
    return Path(path)


# --- ComfyUI's extra_model_paths.yaml --------------------------------------------------------


def comfyui_extra_paths(yaml_path: Path, home: Path, env: Env) -> tuple[list[Path], list[Skipped]]:
    """The model folders a ComfyUI ``extra_model_paths.yaml`` names.

    Its format: top-level sections (``a111:``, ``comfyui:``, ...), each with an optional
    ``base_path`` (relative to the yaml's folder) and category keys whose value is one path or
    several on separate lines (a ``|`` block), relative to ``base_path``.
    """
    try:
        if not yaml_path.is_file():
            return [], []
        if yaml_path.stat().st_size > MAX_YAML_BYTES:
            return [], [Skipped(str(yaml_path), "too large to be a ComfyUI path list")]
        text = yaml_path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return [], [Skipped(str(yaml_path), f"cannot be read ({type(e).__name__})")]
    import yaml  # PyYAML (via huggingface_hub): only when ComfyUI is installed

    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        line = str(e).splitlines()[0] if str(e) else type(e).__name__
        return [], [Skipped(str(yaml_path), f"not valid YAML ({line})")]
    if data is None:
        return [], []
    if not isinstance(data, dict):
        return [], [Skipped(str(yaml_path), "not a list of sections: ignored")]
    paths = [p for section in data.values() for p in _section_paths(section, yaml_path, home, env)]
    return paths, []


def _section_paths(section: object, yaml_path: Path, home: Path, env: Env) -> Iterator[Path]:
    if not isinstance(section, dict):
        return
    base_value = section.get("base_path")
    base = yaml_path.parent
    if isinstance(base_value, str) and base_value.strip():
        base = yaml_path.parent / expand_path(base_value, home, env)  # absolute stays absolute
    for category in COMFYUI_CATEGORIES:
        value = section.get(category)
        lines = value.splitlines() if isinstance(value, str) else value
        if not isinstance(lines, list):
            continue
        for line in lines:
            if isinstance(line, str) and line.strip():
                yield Path(os.path.normpath(base / expand_path(line, home, env)))
