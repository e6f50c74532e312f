"""Which installed packages differ from a lock: what `scripts/test.sh --latest` reports.

    python scripts/lockdiff.py requirements-dev.lock [--markdown FILE]

Prints one line per package whose installed version is not the locked one (newer, older, or not in
the lock); exit 0 either way.
"""

from __future__ import annotations

import re
import sys
from importlib.metadata import distributions
from pathlib import Path

from packaging.markers import Marker

PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def locked(path: Path) -> dict[str, str]:
    """name -> version, for the lines whose environment marker holds here (a universal lock pins some
    packages once per Python version, and never-installed ones under `sys_platform == 'never'`)."""
    return {
        canonical(m[1]): m[2]
        for line in path.read_text().splitlines()
        if (m := PIN.match(line)) and (not m[3] or Marker(m[3]).evaluate())
    }


def installed() -> dict[str, str]:
    return {canonical(d.metadata["Name"]): d.version for d in distributions() if d.metadata["Name"]}


def differences(lock: dict[str, str], have: dict[str, str]) -> list[str]:
    out = []
    for name in sorted(set(have) - {"slipway", "pip"}):
        want = lock.get(name)
        if want is None:
            out.append(f"{name} {have[name]} (not in the lock)")
        elif want != have[name]:
            out.append(f"{name} {want} -> {have[name]}")
    return out


def main(argv: list[str]) -> int:
    lock_path = Path(argv[0]) if argv else Path("requirements-dev.lock")
    lines = differences(locked(lock_path), installed())
    header = f"{len(lines)} installed packages differ from {lock_path}:" if lines else f"all match {lock_path}"
    print(header)
    for line in lines:
        print(f"  {line}")
    if "--markdown" in argv:
        target = Path(argv[argv.index("--markdown") + 1])
        with target.open("a") as fh:
            fh.write(f"### {header}\n\n" + "".join(f"- `{line}`\n" for line in lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
