"""The install must carry every package and the tokenizer vocabulary."""

import importlib.resources
import importlib.util
import os
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'^\s*"([a-z_.]+)",$', text, re.M))
    for top in ("engine", "app"):
        for init in (ROOT / top).rglob("__init__.py"):
            pkg = ".".join(init.parent.relative_to(ROOT).parts)
            assert pkg in listed, f"{pkg} is missing from [tool.setuptools] packages"


def test_installed_package_carries_the_vocabulary():
    """After `pip install .` (not editable) the vocabulary is found without the source tree."""
    if importlib.util.find_spec("latentdesk_resources") is None:
        if os.environ.get("CI"):
            pytest.fail("latentdesk is not installed: run the README's test command")
        pytest.skip("latentdesk is not installed in this environment")
    merges = importlib.resources.files("latentdesk_resources") / "clip" / "bpe_merges.txt.gz"
    assert merges.is_file()
    assert (importlib.resources.files("latentdesk_resources") / "clip" / "LICENSE").is_file()


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    block = re.search(r"```sh\n# tests\n(.+?)\n```", readme, re.S).group(1)
    assert block.strip().splitlines()[-1] in ci
