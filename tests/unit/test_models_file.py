"""The models file: valid shapes load; a bad file says which file, which entry and what is wrong."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from app.core.models_file import ModelsFileError, load_models_file
from app.providers.registry import PROVIDERS


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


def test_no_file_serves_the_packaged_model() -> None:
    models = load_models_file(None, PROVIDERS)
    assert models.default_model == "smollm2"
    assert [(m.name, m.provider, m.path) for m in models.models] == [("smollm2", "local", None)]


def test_issue_example_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
default_model: smollm2
models:
  - name: smollm2
    provider: local
    path: null
    system_prompt: "Answer in one or two short sentences."
    params: {temperature: 0.2, max_tokens: 256}
  - name: llama3.1
    provider: ollama
    fallbacks: [smollm2]
    retries: 2
""",
    )
    models = load_models_file(path, PROVIDERS)
    assert models.models[0].params.max_tokens == 256
    assert models.models[1].upstream_model == "llama3.1:8b"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("models: [", "invalid YAML at line"),
        ("- a\n- b\n", "expected a mapping"),
        ("models: []\n", "models"),
        ("models:\n  - name: a\n    provider: bard\n", "entry #1 ('a'): provider"),
        ("models:\n  - name: a\n    params: {temperature: 9}\n", "entry #1 ('a'): params.temperature"),
        ("models:\n  - name: a\n    colour: red\n", "entry #1 ('a'): colour: Extra inputs"),
        (
            "models:\n  - name: a\n  - name: b\n    provider: openai\n",
            "entry #2 ('b'): provider openai needs `base_url`",
        ),
        ("models:\n  - name: a\n  - name: a\n", "duplicate model names: a"),
        ("models:\n  - name: a\n    fallbacks: [zz]\n", "unknown fallbacks: zz"),
        ("default_model: zz\nmodels:\n  - name: a\n", "default_model 'zz'"),
        ("models:\n  - name: e\n    kind: embedding\n", "entry #1 ('e'): provider local serves no embedding models"),
        (
            "models:\n  - name: e\n    kind: embedding\n    provider: ollama\n",
            "at least one chat model",
        ),
        (
            "default_model: e\nmodels:\n  - name: a\n  - name: e\n    kind: embedding\n    provider: ollama\n",
            "default_model 'e' is an embedding model",
        ),
        (
            "models:\n  - name: a\n    fallbacks: [e]\n  - name: e\n    kind: embedding\n    provider: ollama\n",
            "fallbacks of another kind: e",
        ),
        ("models:\n  - name: a\n    kind: vectors\n", "entry #1 ('a'): kind"),
    ],
)
def test_bad_files_name_file_entry_and_problem(tmp_path: Path, text: str, expected: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ModelsFileError) as info:
        load_models_file(path, PROVIDERS)
    message = str(info.value)
    assert str(path) in message
    assert expected in message


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ModelsFileError, match="not found"):
        load_models_file(tmp_path / "nope.yaml", PROVIDERS)


def test_cli_refuses_a_bad_file_without_a_traceback(tmp_path: Path) -> None:
    path = write(tmp_path, "models:\n  - name: a\n    provider: bard\n")
    out = subprocess.run(
        [sys.executable, "-m", "app", "--port", "1", "--config", str(path)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    assert str(path) in out.stderr.replace("\n", "") and "entry #1 ('a')" in out.stderr


def test_cli_refuses_public_bind_without_auth(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "app", "--host", "0.0.0.0", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    assert out.returncode == 2
    assert "refusing to listen on 0.0.0.0 without API keys" in out.stderr.replace("\n", " ")


def test_error_messages_are_scrubbed() -> None:
    from app.core.errors import ModelNotFound
    from app.core.logging import register_secrets

    register_secrets(["sk-slw-unit-test-secret-123"])
    body = ModelNotFound("The model 'sk-slw-unit-test-secret-123' does not exist").to_dict()
    assert "sk-slw-unit-test-secret-123" not in str(body)


def test_every_problem_is_reported_at_once_with_did_you_mean(tmp_path: Path) -> None:
    path = tmp_path / "models.yaml"
    path.write_text(
        "models:\n"
        "  - {name: a, provider: local, params: {temprature: 0.2}}\n"
        "  - {name: b, provider: olama, contxt_window: 4096}\n"
    )
    out = subprocess.run(
        [sys.executable, "-m", "app", "models", "--config", str(path)],
        capture_output=True, text=True, timeout=60, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "COLUMNS": "60"},
    )  # fmt: skip
    assert out.returncode == 2
    lines = out.stderr.splitlines()
    assert any("params.temprature" in ln and "(did you mean 'temperature'?)" in ln for ln in lines), out.stderr
    assert any("provider" in ln and "(did you mean 'ollama'?)" in ln for ln in lines), out.stderr
    assert any("contxt_window" in ln and "(did you mean 'context_window'?)" in ln for ln in lines), out.stderr
