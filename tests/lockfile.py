"""The CPU image's lock file (requirements/cpu.lock.txt) and the requirement files made from it, read
the way pip and uv read them: continuation lines joined, comments dropped, options apart."""

from __future__ import annotations

import re
from dataclasses import dataclass

from tests.conftest import REPO

LOCK = REPO / "requirements" / "cpu.lock.txt"
LOCK_INPUT = REPO / "requirements" / "cpu.in"
TEMPLATE = REPO / "docker" / "Dockerfile.slim.j2"

PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;\\]+)(?P<rest>.*)$")
HASH = re.compile(r"--hash=sha256:([0-9a-f]{64})")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    name: str  # normalized
    version: str
    hashes: frozenset[str]


def parse(text: str) -> tuple[list[Pin], list[str]]:
    """(pins in file order, option lines). Anything that is not `name==version` fails the caller's test."""
    pins: list[Pin] = []
    options: list[str] = []
    for line in re.sub(r"\\\r?\n", " ", text).splitlines():
        line = re.sub(r"(^|\s)#.*$", "", line).strip()
        if not line:
            continue
        if line.startswith("-"):
            options.append(" ".join(line.split()))
            continue
        match = PIN.match(line)
        assert match, f"not an exact pin: {line!r}"
        pins.append(Pin(normalize(match["name"]), match["version"], frozenset(HASH.findall(match["rest"]))))
    return pins, options


def read_lock() -> tuple[list[Pin], list[str]]:
    return parse(LOCK.read_text())


def locked_versions() -> dict[str, str]:
    return {pin.name: pin.version for pin in read_lock()[0]}


def excluded_deps() -> set[str]:
    """The template's `excluded_deps`: locked, but left out of the image."""
    match = re.search(r"\{%\s*set excluded_deps\s*=\s*\[(.*?)\]\s*%\}", TEMPLATE.read_text(), re.DOTALL)
    assert match, f"no excluded_deps in {TEMPLATE}"
    return {normalize(name) for name in re.findall(r"[\"']([^\"']+)[\"']", match.group(1))}
