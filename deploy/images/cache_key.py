"""The cache key of one image built by deploy/images/build.sh: a hash of everything that goes into it.

An image is rebuilt only when its key changes, so the key must cover every input: the Containerfile,
each file of the build context that the build can see (the context minus what `.dockerignore`
excludes, so editing a test file does not rebuild the platform image but editing a view does), the
keys of the images it is built on (a new Debian base rebuilds everything above it), and any other
input named on the command line (a build argument, the checksum of a binary copied in).

Standard library only: build.sh runs it with the machine's python3, before any virtualenv exists.

    python3 deploy/images/cache_key.py --containerfile F --context DIR [--dockerignore F]
        [--parent KEY]... [--input TEXT]... [--file PATH]...
"""

from __future__ import annotations

import argparse
import hashlib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

KEY_LENGTH = 16


@dataclass(frozen=True)
class IgnoreRule:
    """One line of a .dockerignore: a path pattern, or (with `!`) an exception to earlier lines."""

    pattern: re.Pattern[str]
    negated: bool
    text: str


def _pattern_to_regex(pattern: str) -> re.Pattern[str]:
    # Docker's rules (moby/patternmatcher): `*` and `?` stay inside one path segment, `**` spans any
    # number of segments, and a pattern is matched against the whole path from the context root.
    out = []
    index = 0
    while index < len(pattern):
        char = pattern[index]
        if pattern.startswith("**", index):
            index += 2
            if pattern.startswith("/", index):
                index += 1
                out.append("(?:.*/)?")
            else:
                out.append(".*")
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "[":
            end = pattern.find("]", index)
            if end == -1:
                out.append(re.escape(char))
            else:
                members = pattern[index + 1 : end]
                if members.startswith("!"):  # Go's filepath.Match spells negation [^...] or [!...]
                    members = "^" + members[1:]
                out.append(f"[{members}]")
                index = end
        else:
            out.append(re.escape(char))
        index += 1
    return re.compile("".join(out) + r"\Z")


def parse_dockerignore(text: str) -> list[IgnoreRule]:
    """The rules of a .dockerignore, in order (comments and blank lines dropped, paths normalised)."""
    rules = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negated = line.startswith("!")
        if negated:
            line = line[1:].strip()
        line = os.path.normpath(line).lstrip("/")
        if line in {"", "."}:
            continue
        rules.append(IgnoreRule(_pattern_to_regex(line), negated, line))
    return rules


def is_ignored(relative_path: str, rules: Iterable[IgnoreRule]) -> bool:
    """Whether the context excludes `relative_path` ("a/b/c", relative to the context root).

    As Docker decides it: the last rule that matches the path or one of its parent directories wins,
    so `deploy` excludes everything under deploy/ and a later `!deploy/x` brings deploy/x back.
    """
    parts = relative_path.split("/")
    prefixes = ["/".join(parts[: n + 1]) for n in range(len(parts))]
    ignored = False
    for rule in rules:
        if any(rule.pattern.match(prefix) for prefix in prefixes):
            ignored = not rule.negated
    return ignored


def _may_reinclude(directory: str, rules: list[IgnoreRule]) -> bool:
    # An excluded directory is still walked when an exception could name something inside it.
    return any(rule.negated and (rule.text.startswith(directory + "/") or "*" in rule.text) for rule in rules)


def context_files(root: Path, rules: list[IgnoreRule]) -> Iterator[str]:
    """The relative paths of the files (and symlinks) the build can see, sorted, without excluded ones."""
    for current, directories, files in os.walk(root):
        directories.sort()
        base = Path(current).relative_to(root).as_posix()
        prefix = "" if base == "." else base + "/"
        kept = []
        for directory in directories:
            path = prefix + directory
            if (root / path).is_symlink():
                if not is_ignored(path, rules):
                    yield path
            elif not is_ignored(path, rules) or _may_reinclude(path, rules):
                kept.append(directory)
        directories[:] = kept
        for name in sorted(files):
            path = prefix + name
            if not is_ignored(path, rules):
                yield path


def _file_digest(path: Path) -> str:
    if path.is_symlink():
        return "symlink:" + os.readlink(path)
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    executable = "x" if os.access(path, os.X_OK) else "-"
    return f"{executable}{digest.hexdigest()}"


def image_key(
    *,
    containerfile: Path,
    context: Path,
    dockerignore: Path | None = None,
    parents: Iterable[str] = (),
    inputs: Iterable[str] = (),
    files: Iterable[Path] = (),
) -> str:
    """The cache key (16 hex digits) of one image; equal keys mean equal inputs."""
    digest = hashlib.sha256()

    def add(label: str, value: str) -> None:
        digest.update(f"{label}\0{value}\0".encode())

    add("containerfile", _file_digest(containerfile))
    rules = parse_dockerignore(dockerignore.read_text()) if dockerignore and dockerignore.exists() else []
    for relative in context_files(context, rules):
        add(f"context:{relative}", _file_digest(context / relative))
    for parent in parents:
        add("parent", parent)
    for value in inputs:
        add("input", value)
    for path in files:
        add(f"file:{path.name}", _file_digest(path))
    return digest.hexdigest()[:KEY_LENGTH]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--containerfile", type=Path, required=True)
    parser.add_argument("--context", type=Path, required=True)
    parser.add_argument("--dockerignore", type=Path)
    parser.add_argument("--parent", action="append", default=[], help="key of an image this one is built on")
    parser.add_argument("--input", action="append", default=[], help="any other input, as text")
    parser.add_argument(
        "--file", action="append", default=[], type=Path, help="a file copied in from outside"
    )
    args = parser.parse_args(argv)
    print(
        image_key(
            containerfile=args.containerfile,
            context=args.context,
            dockerignore=args.dockerignore,
            parents=args.parent,
            inputs=args.input,
            files=args.file,
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
