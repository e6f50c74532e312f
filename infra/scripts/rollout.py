#!/usr/bin/env python3
"""Blue-green rollout of one image to Azure Container Apps, with rollback. Called by deploy.yml.

    python3 infra/scripts/rollout.py --resource-group RG --app NAME --image IMAGE --revision-suffix SUFFIX

1. Pin 100% of the traffic to the revision serving now (so the new one starts at 0%).
2. Create the new revision (`az containerapp update --image ... --revision-suffix ...`).
3. Wait for the NEW revision's own URL to answer 200 on /readyz (it serves no user traffic yet).
4. Move 100% of the traffic to it and check the app's public URL answers /readyz.
5. On any failure after step 1: traffic back to the previous revision, the new one deactivated, exit 1.

Why a script and not inline YAML: it runs unchanged from a laptop, and tests/deploy/test_rollout.py
drives it against a stand-in `az` to prove the rollback path. Standard library only (runs on any runner).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any


class RolloutError(RuntimeError):
    """The new revision did not become ready; the message says which step failed."""


@dataclass
class Target:
    resource_group: str
    app: str
    scheme: str = "https"

    def az(self, *args: str) -> Any:
        """Run one `az containerapp` command for this app and return its JSON output (or None)."""
        cmd = ["az", "containerapp", *args, "--name", self.app, "--resource-group", self.resource_group]
        cmd += ["--output", "json"]
        print("+ " + " ".join(cmd), flush=True)
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RolloutError(f"`{' '.join(cmd[:4])}` failed ({done.returncode}): {done.stderr.strip()}")
        out = done.stdout.strip()
        try:
            return json.loads(out) if out else None
        except json.JSONDecodeError:  # a few commands print a plain message
            return out


def serving_revision(target: Target) -> str | None:
    """The active revision with the most traffic now, or None on the first deployment."""
    revisions = target.az("revision", "list") or []
    serving = [
        r
        for r in revisions
        if r.get("properties", {}).get("active") and (r["properties"].get("trafficWeight") or 0) > 0
    ]
    if not serving:
        return None
    return max(serving, key=lambda r: r["properties"]["trafficWeight"])["name"]


def send_all_traffic(target: Target, revision: str) -> None:
    target.az("ingress", "traffic", "set", "--revision-weight", f"{revision}=100")


def wait_ready(url: str, timeout_s: float, interval_s: float = 5.0) -> None:
    """Poll `url` until it answers 200, or raise after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    last = "no answer yet"
    while True:
        try:
            with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - https URL from az
                if response.status == 200:
                    print(f"ready: {url}", flush=True)
                    return
                last = f"HTTP {response.status}"
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code}"
        except (urllib.error.URLError, OSError) as exc:
            last = str(getattr(exc, "reason", exc))
        if time.monotonic() >= deadline:
            raise RolloutError(f"{url} not ready after {timeout_s:.0f} s (last: {last})")
        time.sleep(interval_s)


def write_outputs(**values: str) -> None:
    """Expose values to later workflow steps (GITHUB_OUTPUT), if running in GitHub Actions."""
    path = os.environ.get("GITHUB_OUTPUT")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as fh:
        for key, value in values.items():
            fh.write(f"{key}={value}\n")


def rollout(target: Target, image: str, suffix: str, ready_timeout_s: float, interval_s: float = 5.0) -> str:
    """Deploy `image` as revision `<app>--<suffix>`; return its name. Rolls back and raises on failure."""
    previous = serving_revision(target)
    new = f"{target.app}--{suffix}"
    write_outputs(previous_revision=previous or "", new_revision=new)
    print(f"previous revision: {previous or '(none)'}; new revision: {new}", flush=True)
    try:
        if previous:
            send_all_traffic(target, previous)
        target.az("update", "--image", image, "--revision-suffix", suffix)
        revision = target.az("revision", "show", "--revision", new)
        fqdn = revision["properties"]["fqdn"]
        wait_ready(f"{target.scheme}://{fqdn}/readyz", ready_timeout_s, interval_s)
        send_all_traffic(target, new)
        app = target.az("show")
        app_fqdn = app["properties"]["configuration"]["ingress"]["fqdn"]
        wait_ready(f"{target.scheme}://{app_fqdn}/readyz", min(ready_timeout_s, 120.0), interval_s)
    except Exception as exc:  # any failure, expected or not, must put the traffic back first
        print(f"rollout failed: {exc!r}", file=sys.stderr, flush=True)
        rollback(target, previous, new)
        raise
    print(f"rolled out {image} as {new}", flush=True)
    return new


def rollback(target: Target, previous: str | None, new: str) -> None:
    """Traffic back to `previous`, then take the failed revision out of service."""
    try:
        if previous:
            send_all_traffic(target, previous)
            print(f"traffic moved back to {previous}", file=sys.stderr, flush=True)
        target.az("revision", "deactivate", "--revision", new)
    except RolloutError as exc:  # report, but keep the original failure as the exit reason
        print(f"rollback step failed: {exc}", file=sys.stderr, flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--resource-group", required=True)
    parser.add_argument("--app", required=True, help="Container app name.")
    parser.add_argument("--image", required=True)
    parser.add_argument("--revision-suffix", required=True, help="Lowercase letters, digits and '-'.")
    parser.add_argument("--ready-timeout", type=float, default=600.0, help="Seconds to wait for /readyz.")
    parser.add_argument("--interval", type=float, default=5.0, help="Seconds between /readyz polls.")
    parser.add_argument("--scheme", default="https", choices=["https", "http"])
    args = parser.parse_args(argv)
    target = Target(args.resource_group, args.app, args.scheme)
    try:
        rollout(target, args.image, args.revision_suffix, args.ready_timeout, args.interval)
    except RolloutError:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
