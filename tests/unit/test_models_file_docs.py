"""The models-file documentation's example is a file Slipway serves: it validates and every entry builds."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from app.core.config import Settings
from app.core.models_file import ModelsFile
from app.providers.registry import PROVIDERS

DOC = Path(__file__).resolve().parents[2] / "docs" / "models-file.md"


def test_documented_example_validates_and_builds(monkeypatch: pytest.MonkeyPatch) -> None:
    blocks = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)
    assert blocks, "the doc shows a models file"
    example = ModelsFile.model_validate(yaml.safe_load(blocks[0]), context={"providers": PROVIDERS})
    assert {m.provider for m in example.models} == {"local", "ollama", "gemini", "openai"}
    monkeypatch.setenv("GOOGLE_API_KEY", "doc-example-google-key")
    monkeypatch.setenv("VLLM_API_KEY", "doc-example-vllm-key")
    settings = Settings(_env_file=None)
    expected = {"local": "ChatLlamaCpp", "ollama": "SlipwayChatOllama", "gemini": "SlipwayGemini", "openai": "ChatOpenAI"}
    for spec in example.models:
        if spec.kind == "embedding":
            assert PROVIDERS.get(spec.provider).embedder(spec, settings) is not None  # no connection made
            continue
        model = PROVIDERS.get(spec.provider).chat_model(spec, settings)  # no connection, no weights loaded
        assert type(model).__name__ == expected[spec.provider], spec.name
