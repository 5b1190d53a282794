"""The lock files pin every dependency with its hashes, and the tests run on exactly them.

``make run`` installs requirements.lock, ``make test`` requirements-test.lock, both with
``--require-hashes``: a fresh machine gets the versions the tests passed with.
"""

from __future__ import annotations

import re
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)")
TEST_TOOLS = {"pytest", "pytest-timeout", "ruff", "pyyaml"}


def locked(path: Path) -> dict[str, str]:
    """Each pinned distribution's version, by canonical name; every pin has a hash."""
    pins: dict[str, str] = {}
    entries = re.split(r"\n(?=\S)", path.read_text())
    for entry in entries:
        match = PIN.match(entry)
        if match:
            assert "--hash=sha256:" in entry, f"{path.name}: {match.group(1)} has no hash"
            pins[canonicalize_name(match.group(1))] = match.group(2)
    return pins


def declared() -> tuple[list[Requirement], list[Requirement]]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = [Requirement(r) for r in project["dependencies"]]
    return runtime, [Requirement(r) for r in project["optional-dependencies"]["test"]]


def test_every_declared_dependency_is_locked_at_a_version_it_allows() -> None:
    runtime, test = declared()
    for lock, requirements in (("requirements.lock", runtime), ("requirements-test.lock", test)):
        pins = locked(REPO / lock)
        for requirement in requirements:
            version = pins.get(canonicalize_name(requirement.name))
            assert version is not None, f"{requirement.name} is not in {lock}"
            assert requirement.specifier.contains(version, prereleases=True), (lock, requirement)


def test_the_desk_alone_gets_no_test_tool_and_the_same_versions_as_the_tests() -> None:
    runtime, test = locked(REPO / "requirements.lock"), locked(REPO / "requirements-test.lock")

    assert not TEST_TOOLS & runtime.keys()
    assert test.keys() >= TEST_TOOLS
    assert {name: test[name] for name in runtime} == runtime


def test_this_environment_was_installed_from_the_test_lock() -> None:
    differing = {
        name: version
        for name, version in locked(REPO / "requirements-test.lock").items()
        if metadata.version(name) != version
    }
    assert differing == {}, "installed versions differ from requirements-test.lock"
