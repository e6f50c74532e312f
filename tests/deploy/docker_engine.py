"""A private Docker engine for the container smoke test, and the offline stand-in for python:3.11-slim.

Why a private engine: the test must not depend on (or disturb) a Docker daemon the machine may already
run. This dockerd has its own data root, exec root, socket, pidfile, containerd namespace and an empty
daemon.json; it creates no bridge and touches no iptables (builds and containers use the host network),
so stopping it leaves nothing behind.

Why a stand-in base image: no registry is reachable. `debootstrap --variant=minbase` gives Debian
bookworm with Python 3.11 (what python:3.11-slim is), imported under that exact tag so the real
Dockerfile builds unchanged. The host's CA bundle and pip index settings go in, so pip inside the
build reaches PyPI the way the host does (through a TLS-inspecting proxy, say).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

BASE_IMAGE = "python:3.11-slim"
STANDIN_LABEL = "org.slipway.standin"
STANDIN_RECIPE = "debootstrap-minbase-bookworm-python3-v1"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
PIP_KEYS = ("index-url", "extra-index-url", "trusted-host", "timeout", "default-timeout")


class EngineError(RuntimeError):
    """The engine or a docker command failed; the message carries the command's output."""


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "slipway"


def _clean_env() -> dict[str, str]:
    """The CLI must talk to OUR engine only, with no user config (contexts, credential helpers)."""
    return {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}


class DockerEngine:
    """dockerd started and stopped by the test.

    The data root may be a persistent cache (`~/.cache/slipway/docker`) so the stand-in base image is
    built once per machine; a file lock keeps two test runs from sharing it at once (the second one
    falls back to a temporary data root).
    """

    def __init__(self, data_root: Path | None = None) -> None:
        # Unix socket paths are limited to 108 bytes: keep the run directory short.
        self.run_dir = Path(tempfile.mkdtemp(prefix="slw-", dir="/tmp"))
        self.socket = self.run_dir / "docker.sock"
        self.pidfile = self.run_dir / "docker.pid"
        self.log_path = self.run_dir / "dockerd.log"
        self.cli_config = self.run_dir / "cli"
        self.cli_config.mkdir()
        self._lock_file = None
        self.temporary_data_root = True
        if data_root is not None:
            data_root.parent.mkdir(parents=True, exist_ok=True)
            lock = open(data_root.with_suffix(".lock"), "w")  # held until stop()
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                self._lock_file = lock
                self.temporary_data_root = False
            except BlockingIOError:
                lock.close()
                data_root = None
        self.data_root = data_root or (self.run_dir / "data")
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None
        self.docker_bin = shutil.which("docker") or "/usr/bin/docker"

    # -- lifecycle -----------------------------------------------------------------------------------
    def start(self, timeout_s: float = 90.0) -> DockerEngine:
        daemon_json = self.run_dir / "daemon.json"
        daemon_json.write_text("{}")
        ns = f"slipway-test-{os.getpid()}"
        cmd = [
            shutil.which("dockerd") or "/usr/sbin/dockerd",
            "--config-file", str(daemon_json),
            "--data-root", str(self.data_root),
            "--exec-root", str(self.run_dir / "exec"),
            "--pidfile", str(self.pidfile),
            "-H", f"unix://{self.socket}",
            "--bridge", "none",
            "--iptables=false",
            "--ip-masq=false",
            "--ip-forward=false",
            "--containerd-namespace", ns,
            "--containerd-plugins-namespace", f"{ns}-plugins",
        ]  # fmt: skip
        self._log = open(self.log_path, "wb")  # closed in stop()
        # Own session: a Ctrl-C in pytest must not kill the engine before stop() cleans up.
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise EngineError(f"dockerd exited with {self.proc.returncode}:\n{self.log_tail()}")
            if self.socket.exists() and self.docker("version", check=False, timeout=10).returncode == 0:
                return self
            time.sleep(0.5)
        raise EngineError(f"dockerd did not answer within {timeout_s:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout_s: float = 60.0) -> list[str]:
        """Stop dockerd (it stops its containerd) and return descriptions of any process left over."""
        leftovers: list[str] = []
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self._log:
            self._log.close()
        marker = str(self.run_dir)
        for _ in range(20):  # containerd and shims exit shortly after dockerd
            leftovers = _processes_mentioning(marker)
            if not leftovers:
                break
            time.sleep(0.5)
        for pid, _desc in [(int(x.split()[0]), x) for x in leftovers]:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        for root in (self.run_dir, self.data_root):
            _unmount_below(root)
        if self.temporary_data_root:
            shutil.rmtree(self.data_root, ignore_errors=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
        if self._lock_file:
            self._lock_file.close()
            self._lock_file = None
        return leftovers

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no dockerd log)"

    # -- commands -------------------------------------------------------------------------------------
    def docker(
        self, *args: str, check: bool = True, timeout: float = 120.0, stdin: bytes | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            **_clean_env(),
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.cli_config),
            # The classic builder: what an engine without buildx offers, and what the Dockerfile targets.
            "DOCKER_BUILDKIT": "0",
        }
        result = subprocess.run(
            [self.docker_bin, *args],
            env=env,
            input=stdin.decode() if stdin is not None else None,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and result.returncode != 0:
            raise EngineError(f"docker {' '.join(args[:3])} failed ({result.returncode}):\n{result.stderr[-4000:]}")
        return result

    def docker_to_file(self, args: list[str], log: Path, timeout: float) -> int:
        """Run a long docker command (a build) with its output in a file; return the exit code."""
        env = {
            **_clean_env(),
            "DOCKER_HOST": f"unix://{self.socket}",
            "DOCKER_CONFIG": str(self.cli_config),
            "DOCKER_BUILDKIT": "0",
        }
        with open(log, "wb") as fh:
            return subprocess.run(
                [self.docker_bin, *args], env=env, stdout=fh, stderr=subprocess.STDOUT, timeout=timeout, check=False
            ).returncode

    def images(self) -> list[str]:
        out = self.docker("images", "-a", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
        return sorted(line for line in out.splitlines() if line.strip())

    def containers(self) -> list[str]:
        return [c for c in self.docker("ps", "-aq").stdout.split() if c]


def _processes_mentioning(marker: str) -> list[str]:
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmdline = " ".join(proc.info.get("cmdline") or [])
        if marker in cmdline and proc.pid != os.getpid():
            found.append(f"{proc.pid} {cmdline[:160]}")
    return found


def _unmount_below(root: Path) -> None:
    """Unmount anything a killed engine left mounted under `root` (deepest first)."""
    prefix = str(root.resolve()) + "/"
    try:
        mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    except OSError:
        return
    for mount in sorted((m for m in mounts if m.startswith(prefix)), key=len, reverse=True):
        subprocess.run(["umount", "-l", mount], capture_output=True, check=False)


# -- the stand-in base image ---------------------------------------------------------------------------
def host_pip_conf() -> str:
    """A pip.conf for the image: the host's index settings (network URLs only) and its CA bundle."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "config", "list"], capture_output=True, text=True, check=False, timeout=60
    )
    values: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, _, raw = line.partition("=")
        name = key.rsplit(".", 1)[-1]
        value = raw.strip().strip("'\"")
        if name not in PIP_KEYS:
            continue
        if name in ("index-url", "extra-index-url"):
            value = " ".join(u for u in value.split() if u.startswith(("http://", "https://")))
        if value:
            values[name] = value
    lines = ["[global]", f"cert = {HOST_CA_BUNDLE}"] + [f"{k} = {v}" for k, v in sorted(values.items())]
    return "\n".join(lines) + "\n"


def host_ca_bundle() -> bytes:
    """The host's trust: its system bundle plus pip's own `cert`, if it names another file."""
    parts = [HOST_CA_BUNDLE.read_bytes()] if HOST_CA_BUNDLE.is_file() else []
    extra = os.environ.get("PIP_CERT")
    if extra and Path(extra).is_file() and Path(extra).resolve() != HOST_CA_BUNDLE.resolve():
        parts.append(Path(extra).read_bytes())
    return b"\n".join(parts)


def standin_fingerprint(pip_conf: str, ca_bundle: bytes) -> str:
    digest = hashlib.sha256(STANDIN_RECIPE.encode() + pip_conf.encode() + ca_bundle).hexdigest()
    return digest[:16]


def ensure_base_image(engine: DockerEngine, timings: dict[str, float]) -> str:
    """Build the python:3.11-slim stand-in unless this engine already has an up-to-date one."""
    pip_conf, ca_bundle = host_pip_conf(), host_ca_bundle()
    fingerprint = standin_fingerprint(pip_conf, ca_bundle)
    probe = engine.docker("image", "inspect", BASE_IMAGE, "--format", "{{json .Config.Labels}}", check=False)
    if probe.returncode == 0 and (json.loads(probe.stdout or "null") or {}).get(STANDIN_LABEL) == fingerprint:
        timings["base_image_reused"] = 1.0
        return fingerprint
    workdir = Path(tempfile.mkdtemp(prefix="slw-rootfs-", dir="/tmp"))
    rootfs = workdir / "rootfs"
    try:
        started = time.monotonic()
        mirror = os.environ.get("SLIPWAY_DEBIAN_MIRROR", "http://deb.debian.org/debian")
        cmd = ["debootstrap", "--variant=minbase", "--include=python3,python3-pip,python3-venv,ca-certificates"]
        done = subprocess.run(
            [*cmd, "bookworm", str(rootfs), mirror], capture_output=True, text=True, timeout=1200, check=False
        )
        if done.returncode != 0:
            raise EngineError(f"debootstrap failed ({done.returncode}):\n{(done.stdout + done.stderr)[-3000:]}")
        timings["debootstrap_s"] = time.monotonic() - started
        bundle = rootfs / HOST_CA_BUNDLE.relative_to("/")
        bundle.write_bytes(bundle.read_bytes() + b"\n" + ca_bundle if bundle.exists() else ca_bundle)
        (rootfs / "etc" / "pip.conf").write_text(pip_conf)
        for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / cache).glob("*"):
                if item.is_file():
                    item.unlink()
        started = time.monotonic()
        tar = subprocess.run(["tar", "-C", str(rootfs), "-c", "."], capture_output=True, check=True, timeout=600)
        env = {**_clean_env(), "DOCKER_HOST": f"unix://{engine.socket}", "DOCKER_CONFIG": str(engine.cli_config)}
        import_cmd = [
            engine.docker_bin, "import",
            "-c", f"LABEL {STANDIN_LABEL}={fingerprint}",
            "-c", "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8",
            "-c", 'CMD ["python3"]',
            "-", BASE_IMAGE,
        ]  # fmt: skip
        imported = subprocess.run(
            import_cmd,
            input=tar.stdout,
            env=env,
            capture_output=True,
            timeout=600,
            check=False,
        )
        if imported.returncode != 0:
            raise EngineError(f"docker import failed:\n{imported.stderr.decode(errors='replace')[-2000:]}")
        timings["import_s"] = time.monotonic() - started
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return fingerprint
