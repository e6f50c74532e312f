"""`python -m app --tunnel`: share the running service with testers through an ngrok tunnel (pyngrok).

A public URL without auth is an open model for anyone, so the tunnel is refused unless API-key auth is
on. The tunnel opens in a worker thread once the app has started, so the service serves locally at
once and keeps serving whatever happens to the tunnel: no agent, no download, no network or a bad token
each give one clear message, never a crash. Shutdown closes the tunnel and stops the agent process.
The auth token (settings or NGROK_AUTHTOKEN) is registered as a secret, so no log line carries it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console

from app.core.config import Settings
from app.core.logging import register_secrets, scrub

log = logging.getLogger("slipway.tunnel")
console = Console(stderr=True, highlight=False, soft_wrap=True)  # URLs stay whole, never folded


class TunnelRefused(Exception):
    """Opening a tunnel would expose the service without auth."""


REFUSAL = (
    "refusing to open a tunnel without API keys: anyone with the public URL could use the models. "
    "Create a key (`python -m app keys create --name tester`) or set SLIPWAY_API_KEYS, then run again."
)


@dataclass
class Tunnel:
    """One ngrok tunnel to this service, and the agent process pyngrok runs for it."""

    settings: Settings
    public_url: str | None = None
    error: str | None = None
    _task: asyncio.Task[None] | None = field(default=None, repr=False)

    def config(self) -> Any:
        from pyngrok import conf

        s = self.settings
        return conf.PyngrokConfig(
            ngrok_path=str(s.ngrok_path) if s.ngrok_path else None,
            config_path=str(s.ngrok_config_path) if s.ngrok_config_path else None,
            auth_token=s.ngrok_authtoken.get_secret_value() if s.ngrok_authtoken else None,
            region=s.ngrok_region,
            ngrok_version=s.ngrok_version,
            startup_timeout=s.ngrok_startup_timeout_s,
            monitor_thread=False,
        )

    def local_url(self) -> str:
        host = "127.0.0.1" if self.settings.host in ("0.0.0.0", "::", "") else self.settings.host
        return f"http://{host}:{self.settings.port}"

    def _connect(self) -> str:
        """Blocking: start the agent (installing it first if pyngrok can) and open an HTTP tunnel."""
        from pyngrok import ngrok

        # bind_tls: one https tunnel (ngrok v2 would also open a plain-http one; v3 opens https only).
        tunnel = ngrok.connect(addr=self.local_url(), proto="http", pyngrok_config=self.config(), bind_tls=True)
        return str(tunnel.public_url)

    async def open(self) -> None:
        from pyngrok.exception import PyngrokError, PyngrokNgrokError, PyngrokNgrokInstallError

        try:
            self.public_url = await asyncio.to_thread(self._connect)
        except PyngrokNgrokInstallError as exc:
            where = self.settings.ngrok_path or "pyngrok's default location"
            self.error = (
                f"no ngrok agent at {where}, and it could not be downloaded ({_first_line(exc)}). "
                "Install the agent (https://ngrok.com/download) and set SLIPWAY_NGROK_PATH to it."
            )
        except PyngrokNgrokError as exc:
            self.error = (
                f"the ngrok agent could not open the tunnel ({_first_line(exc)}). Check that this machine "
                "reaches ngrok and that the auth token (NGROK_AUTHTOKEN) is valid."
            )
        except (PyngrokError, OSError) as exc:
            self.error = f"the tunnel could not be opened ({_first_line(exc)})."
        if self.error:
            log.warning("tunnel not opened: %s", self.error)
            console.print(
                f"[bold yellow]tunnel not opened:[/] {scrub(self.error)}\n"
                f"The service keeps running locally at {self.local_url()}"
            )
            self.stop_agent()
            return
        log.info("tunnel open: %s -> %s", self.public_url, self.local_url())
        console.print(instructions(self.public_url or "", self.local_url()))

    def start(self) -> None:
        self._task = asyncio.create_task(self.open(), name="ngrok-tunnel")

    def stop_agent(self) -> None:
        """Stop the agent pyngrok started for our binary (also while it is still starting)."""
        from pyngrok import ngrok

        with contextlib.suppress(Exception):
            ngrok.kill(self.config())

    async def close(self) -> None:
        from pyngrok import ngrok

        if self.public_url:
            with contextlib.suppress(Exception):
                await asyncio.to_thread(ngrok.disconnect, self.public_url, self.config())
        await asyncio.to_thread(self.stop_agent)
        if self._task is not None and not self._task.done():
            # The agent was still starting: killed above, its start-up fails at once; wait for the thread.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(self._task), timeout=self.settings.ngrok_startup_timeout_s)
            await asyncio.to_thread(self.stop_agent)
        log.info("tunnel closed")


def instructions(public_url: str, local_url: str) -> str:
    """What a developer passes on to testers: the URL and how to authenticate (never a key)."""
    return (
        f"[bold green]tunnel open:[/] {public_url} -> {local_url}\n"
        f"  web chat:  {public_url}/  (enter your API key when asked)\n"
        f"  API:       curl {public_url}/v1/models -H 'Authorization: Bearer <your API key>'\n"
        f"  OpenAI:    OpenAI(base_url='{public_url}/v1', api_key='<your API key>')\n"
        "  Give each tester a key of their own: python -m app keys create --name <tester>"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return scrub(text[0][:300]) if text else type(exc).__name__


def open_tunnel(settings: Settings, auth_on: bool) -> Tunnel:
    """Refuse without auth (TunnelRefused); else a tunnel the app opens once it has started."""
    if not auth_on:
        raise TunnelRefused(REFUSAL)
    if settings.ngrok_authtoken:
        register_secrets([settings.ngrok_authtoken.get_secret_value()])
    # pyngrok logs every agent line at INFO (the command line with the token among them): keep it quiet.
    logging.getLogger("pyngrok").setLevel(logging.WARNING)
    return Tunnel(settings)
