"""The project's image, built in the background from the moment the suite is collected.

Why: the container test's set-up (a private dockerd, the debootstrap stand-in of python:3.11-slim, the
`docker build`) takes 2 to 5 minutes, most of it waiting on disk and the package index, and it ran
alone while nothing else did. Started when collection ends, it runs beside the tests that come before
test_container.py (bench, browser, the other deploy checks), and that file's fixtures wait for it.
Run alone (`pytest tests/deploy/test_container.py`), it simply starts when the fixture asks.

Everything the build leaves is accounted for as before: the engine stops at the end of the container
tests (or of the session, if they never ran), the image and its layers are removed by the fixture.
"""

from __future__ import annotations

import os
import shutil
import threading
import time
import uuid
from pathlib import Path

from tests.deploy.docker_engine import DockerEngine, cache_root, ensure_base_image
from tests.deploy.tools import ROOT

BUILD_TIMEOUT_S = 2400.0
ARTIFACTS = ROOT / "test-artifacts"


def missing_prerequisites() -> list[str]:
    missing = [name for name in ("dockerd", "debootstrap", "tar") if shutil.which(name) is None]
    if shutil.which("docker") is None:
        missing.append("docker (CLI)")
    if os.geteuid() != 0:
        missing.append("root (dockerd and debootstrap need it)")
    return missing


def wheel_dir() -> Path:
    return Path(os.environ.get("SLIPWAY_WHEEL_DIR") or cache_root() / "wheels")


class ImageBuild:
    """One engine and one image for the run, made by a thread; `wait()` hands them over (or raises
    what went wrong, with the build's log)."""

    def __init__(self) -> None:
        self.engine: DockerEngine | None = None
        self.tag: str | None = None
        self.images_before: set[str] = set()
        self.build_log = ""
        self.error: BaseException | None = None
        self.timings: dict[str, float] = {}
        self.thread: threading.Thread | None = None
        self.engine_ready = threading.Event()
        self.stopped = False

    def start(self) -> None:
        if self.thread is None:
            self.thread = threading.Thread(target=self._run, name="slipway-image-build", daemon=True)
            self.thread.start()

    def _run(self) -> None:
        try:
            persistent = os.environ.get("SLIPWAY_DOCKER_CACHE", "1") != "0"
            engine = DockerEngine(cache_root() / "docker" if persistent else None)
            self.engine = engine
            started = time.monotonic()
            engine.start()
            self.timings["engine_start_s"] = time.monotonic() - started
            self.engine_ready.set()
            ensure_base_image(engine, self.timings)
            self.images_before = set(engine.images())
            self._build(engine)
        except BaseException as exc:
            self.error = exc
        finally:
            self.engine_ready.set()

    def _build(self, engine: DockerEngine) -> None:
        tag = f"slipway-smoke:{uuid.uuid4().hex[:8]}"
        context_wheels = ROOT / "wheels"
        made_folder = not context_wheels.exists()
        context_wheels.mkdir(exist_ok=True)
        copied = []
        for wheel in sorted(wheel_dir().glob("llama_cpp_python-*.whl")):
            if not (context_wheels / wheel.name).exists():
                shutil.copy2(wheel, context_wheels / wheel.name)
                copied.append(context_wheels / wheel.name)
        log = engine.run_dir / "build.log"
        started = time.monotonic()
        try:
            code = engine.docker_to_file(["build", "--network", "host", "-t", tag, str(ROOT)], log, BUILD_TIMEOUT_S)
        finally:
            for path in copied:
                path.unlink(missing_ok=True)
            if made_folder and not any(context_wheels.iterdir()):
                context_wheels.rmdir()
        self.timings["build_s"] = time.monotonic() - started
        self.build_log = log.read_text(errors="replace")
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "container-build.log").write_text(self.build_log)
        if code != 0:
            raise AssertionError(f"docker build failed ({code}):\n{self.build_log[-6000:]}")
        self.timings["used_prebuilt_wheel"] = float("using the pre-built wheel" in self.build_log)
        self.tag = tag

    def wait_engine(self, timeout_s: float = 600.0) -> DockerEngine:
        self.start()
        self.engine_ready.wait(timeout_s)
        if self.engine is None or not self.engine_ready.is_set() or self.engine.proc is None:
            raise self.error or RuntimeError("the Docker engine did not start")
        return self.engine

    def wait_image(self) -> str:
        self.start()
        assert self.thread is not None
        self.thread.join(BUILD_TIMEOUT_S + 600)
        if self.error is not None:
            raise self.error
        if self.tag is None:
            raise RuntimeError("the image build did not finish")
        return self.tag

    def stop(self) -> list[str]:
        """Stop the engine; the processes it left, if any. A build still running (a run interrupted,
        or ended before the container tests) ends with its engine."""
        if self.stopped:
            return []
        self.stopped = True
        if self.thread is None:
            return []
        self.engine_ready.wait(120)
        leftovers = self.engine.stop() if self.engine is not None else []
        self.thread.join(60)
        return leftovers


#: The run's one build: started by tests/conftest.py when collection selected a docker test.
BUILD = ImageBuild()
