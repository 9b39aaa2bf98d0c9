"""The install must carry every package and the tokenizer vocabulary."""

import importlib.resources
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_package_is_listed_in_pyproject():
    text = (ROOT / "pyproject.toml").read_text()
    listed = set(re.findall(r'^\s*"([a-z_.]+)",$', text, re.M))
    for top in ("engine", "app"):
        for init in (ROOT / top).rglob("__init__.py"):
            pkg = ".".join(init.parent.relative_to(ROOT).parts)
            assert pkg in listed, f"{pkg} is missing from [tool.setuptools] packages"


def test_ci_runs_the_readme_test_command():
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    command = re.search(r"```sh\n# tests\n(.+?)\n```", readme, re.S).group(1).strip().splitlines()[-1]
    assert command in ci
