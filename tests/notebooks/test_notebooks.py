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
from pathlib import Path
from typing import Any

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.servers import ROOT, SlipwayServer, free_port

NOTEBOOKS = ROOT / "notebooks"
NAMES = ["01_prototype_chains.ipynb", "02_evaluate.ipynb", "03_call_the_service.ipynb"]


class ThisPython(KernelSpecManager):
    """Every kernel name is this interpreter's ipykernel, whatever `python3` kernelspec the machine
    (or the user's ~/.local/share/jupyter) has: the notebooks must run on this venv's packages."""

    def get_kernel_spec(self, kernel_name: str) -> KernelSpec:
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        return KernelSpec(argv=argv, display_name="Python 3 (Slipway .venv)", language="python")


def execute(nb_or_name: Any, env: dict[str, str] | None = None, cwd: Path = NOTEBOOKS, timeout: int = 300) -> Any:
    """Execute a notebook (a name in notebooks/ or a NotebookNode) in a kernel running this
    interpreter, with `cwd` as its working directory; raises CellExecutionError on a failing cell."""
    nb = nbformat.read(NOTEBOOKS / nb_or_name, as_version=4) if isinstance(nb_or_name, str) else nb_or_name
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(cwd)}})
    # A clean Slipway environment plus what the test sets; no network is reachable either way.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLIPWAY_", "OLLAMA_", "GOOGLE_"))}
    base["OLLAMA_HOST"] = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    base.update(env or {})
    client.km = KernelManager(kernel_name="python3", kernel_spec_manager=ThisPython())
    with client.setup_kernel(env=base, cwd=str(cwd)):
        client.execute(cleanup_kc=False)
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


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("*.ipynb")), ids=lambda p: p.name)
def test_stored_without_outputs(path: Path) -> None:
    """The CI check: every notebook in notebooks/ is committed without outputs or execution counts, so
    diffs show code only and no answer or key leaks into git."""
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name} cell {i}: clear outputs"


def test_every_notebook_is_tested() -> None:
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == NAMES


def test_notebooks_import_the_project_instead_of_copying_it() -> None:
    code = {
        name: "\n".join(c.source for c in nbformat.read(NOTEBOOKS / name, as_version=4).cells if c.cell_type == "code")
        for name in NAMES
    }
    # No prompt templates, chains or metrics of their own: those come from app/ and eval/.
    copied = ("ChatPromptTemplate", "langchain_core.prompts", "def chat(", "def qa(", "def summarize(")
    metric_libraries = ("sacrebleu", "rouge_score", "nltk", "meteor_score")
    for name, source in code.items():
        for needle in copied + metric_libraries:
            assert needle not in source, (name, needle)
    assert "from app.chains import" in code[NAMES[0]] and "build_chat_model" in code[NAMES[0]]
    assert "from eval import" in code[NAMES[1]]


@pytest.mark.slow
def test_kernel_is_this_venv_and_imports_the_checkout() -> None:
    """The kernel runs this interpreter, and `import app` / `import eval` find this checkout when
    Jupyter is started at the project root (no sys.path help from the notebook)."""
    probe = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_code_cell(
                "import sys, app, eval\nprint(sys.executable)\nprint(app.__file__)\nprint(eval.__file__)"
            )
        ]
    )
    printed = outputs(execute(probe, cwd=ROOT, timeout=60)).split()
    assert printed == [sys.executable, str(ROOT / "app" / "__init__.py"), str(ROOT / "eval" / "__init__.py")]


@pytest.mark.slow
def test_01_prototype_chains_offline() -> None:
    # From the project root (the other notebook tests run from notebooks/, as Jupyter does by default).
    text = outputs(execute(NAMES[0], cwd=ROOT))
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
    from app.providers.llama_cpp import ChatLlamaCpp, packaged_model_path
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
    assert "evaluating 8 summarisation cases" in text
    # The score table: every metric of the harness, both runs, BLEU and METEOR with their intervals.
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line.split()}
    for name in ("bleu", "chrf", "rouge1", "rouge2", "rougeL", "rougeLsum", "meteor", "exact_match", "length_ratio"):
        assert name in rows, text
    for name in ("bleu", "meteor"):
        plain, low, high, chain, *_ = rows[name]  # 6.906 [1.2, 9.9] 9.663 [...]
        assert low.startswith("[") and high.endswith("]") and float(plain) >= 0 and float(chain) >= 0, rows[name]
    images = [o for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {})]
    assert len(images) == 1, "the scores and latency figure"
    # The paired comparison covered the 8 cases.
    counts = line_after(text, "meteor: chain - plain").split("wins/losses/ties ")[1]
    assert sum(int(n) for n in counts.split("/")) == 8, counts
    assert "got:" in text and "want:" in text


KEY = "sk-notebook-test-key"


@pytest.fixture(scope="module")
def slipway() -> Iterator[SlipwayServer]:
    # The packaged local model, as a developer starts it, with API keys on (as behind a tunnel).
    with SlipwayServer(env={"SLIPWAY_API_KEYS": KEY}) as server:
        yield server


def line_before(text: str, prefix: str) -> str:
    lines = text.splitlines()
    return lines[next(i for i, line in enumerate(lines) if line.startswith(prefix)) - 1].strip()


@pytest.mark.slow
def test_03_call_the_service(slipway: SlipwayServer) -> None:
    text = outputs(execute(NAMES[2], env={"SLIPWAY_URL": slipway.url, "SLIPWAY_API_KEY": KEY}))
    assert "ready: ready | models: ['smollm2']" in text
    assert line_after(text, "openai:") and line_after(text, "langchain:"), text
    assert int(line_after(text, "openai stream:").split()[0]) > 1
    assert line_before(text, "openai stream:"), "the streamed text was printed"
    assert int(line_after(text, "langchain stream:").split()[0]) > 1
    assert line_before(text, "langchain stream:"), "the streamed text was printed"
    assert "session messages stored: 4" in text and "export: 2 cases" in text


@pytest.mark.slow
@pytest.mark.parametrize("case", ["no server", "no key"])
def test_03_says_what_is_missing(case: str, slipway: SlipwayServer) -> None:
    url = f"http://127.0.0.1:{free_port()}" if case == "no server" else slipway.url
    with pytest.raises(CellExecutionError) as err:
        execute(NAMES[2], env={"SLIPWAY_URL": url}, timeout=60)
    want = "start it with `.venv/bin/python -m app`" if case == "no server" else "set SLIPWAY_API_KEY"
    assert want in str(err.value)
