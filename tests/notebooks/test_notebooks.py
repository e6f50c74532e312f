"""The notebooks run end to end on the local model, offline, in a real Jupyter kernel (nbclient) from
this interpreter, failing on any cell error; and they are stored without outputs.

01's Ollama cell runs both ways: skipped with its reason when nothing listens (the default here), and
for real against the loopback Ollama stand-in of tests/providers (NDJSON /api/chat and /api/tags,
answering with the real SmolLM2) when OLLAMA_HOST points at it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import Any

import nbformat
import pytest
from nbclient import NotebookClient

from tests.servers import ROOT, SlipwayServer, free_port

NOTEBOOKS = ROOT / "notebooks"
NAMES = ["01_prototype_chains.ipynb", "02_evaluate.ipynb", "03_call_the_service.ipynb"]


def execute(name: str, env: dict[str, str] | None = None, timeout: int = 300) -> Any:
    """Execute a notebook in a kernel running this interpreter, with cwd = notebooks/."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},
    )
    # The kernel is this venv's python (not whatever `python3` kernelspec the machine has), with a
    # clean Slipway environment plus what the test sets; no network is reachable either way.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLIPWAY_", "OLLAMA_", "GOOGLE_"))}
    base["OLLAMA_HOST"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    base.update(env or {})
    client.km = client.kernel_manager_class(kernel_name="python3")
    client.km.kernel_cmd = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    with client.setup_kernel(env=base, cwd=str(NOTEBOOKS)):
        client.execute(cleanup_kc=False)  # raises CellExecutionError on the first failing cell
    return nb


def outputs(nb: Any) -> str:
    """Everything the cells printed (stdout and text results)."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") == "stream":
                parts.append(out["text"])
            elif "data" in out and "text/plain" in out["data"]:
                parts.append(out["data"]["text/plain"])
    return "".join(parts)


def line_after(text: str, prefix: str) -> str:
    return next(line for line in text.splitlines() if line.startswith(prefix))[len(prefix) :].strip()


@pytest.mark.parametrize("name", NAMES)
def test_stored_without_outputs(name: str) -> None:
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    nbformat.validate(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{name}: strip outputs before committing"


def test_every_notebook_is_tested() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


def test_notebooks_import_the_project_instead_of_copying_it() -> None:
    for name in NAMES:
        source = "\n".join(c.source for c in nbformat.read(NOTEBOOKS / name, as_version=4).cells)
        assert "ChatPromptTemplate" not in source and "sentence_bleu" not in source, name
        assert "def chat(" not in source and "def qa(" not in source, name


@pytest.mark.slow
def test_01_prototype_chains_offline() -> None:
    text = outputs(execute(NAMES[0]))
    assert line_after(text, "local qa:"), text
    assert line_after(text, "local summarize:"), text
    pieces = int(line_after(text, "local chat streamed in").split()[0])
    assert pieces > 1, "the chain streamed"
    assert "skipped: Ollama is not reachable at http://127.0.0.1:" in text
    assert "skipped: no GOOGLE_API_KEY" in text
    assert "ollama qa:" not in text and "gemini qa:" not in text


@pytest.fixture(scope="module")
def ollama_standin() -> Iterator[Any]:
    """tests/providers' Ollama stand-in: Ollama's protocol, answers written by the real SmolLM2."""
    from app.providers.local import ChatLlamaCpp, packaged_model_path
    from tests.providers.standins import LocalText, StandIn, ollama_routes

    model = ChatLlamaCpp(model_path=packaged_model_path(), model_name="standin", max_tokens=32)
    model.load()
    standin = StandIn("ollama", ollama_routes, LocalText(model)).start()
    yield standin
    standin.stop()
    model.close()


@pytest.mark.slow
def test_01_ollama_cell_runs_when_ollama_is_there(ollama_standin: Any) -> None:
    text = outputs(execute(NAMES[0], env={"OLLAMA_HOST": ollama_standin.url}))
    assert line_after(text, "ollama qa:"), text
    sent = ollama_standin.requests_for("llama3.1:8b")
    assert sent and sent[-1].path == "/api/chat", "the chain reached Ollama's chat API"
    assert "The boat in the harbour was painted red." in str(sent[-1].body["messages"])


@pytest.mark.slow
def test_02_evaluate_with_plots() -> None:
    nb = execute(NAMES[1])
    text = outputs(nb)
    assert "evaluating 12" in text
    table = {line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0] in {"bleu", "meteor"}}
    assert set(table) == {"bleu", "meteor"} and "[" in table["bleu"], text
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1, "the scores and latency figure"
    assert "wins/losses/ties" in text


@pytest.fixture(scope="module")
def slipway() -> Iterator[SlipwayServer]:
    with SlipwayServer() as server:  # the packaged local model, as a developer starts it
        yield server


@pytest.mark.slow
def test_03_call_the_service(slipway: SlipwayServer) -> None:
    text = outputs(execute(NAMES[2], env={"SLIPWAY_URL": slipway.url}))
    assert "ready: ready | models: ['smollm2']" in text
    assert line_after(text, "openai:") and line_after(text, "langchain:")
    assert int(line_after(text, "openai stream:").split()[0]) > 1
    assert int(line_after(text, "langchain stream:").split()[0]) > 1
    assert "session messages stored: 4" in text and "export: 2 cases" in text
