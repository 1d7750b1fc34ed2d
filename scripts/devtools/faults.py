"""`xsell faults disk`: a really full filesystem under the real service.

The suite checks disk trouble in-process (SQLite's page limit, a query-only
connection). This puts the log on a small tmpfs of its own, starts `xsell serve` on
it, and then really fills the filesystem and really remounts it read-only while
storefront requests and feedback keep coming: every answer must be a 2xx or a 503
with a JSON error, never a 500 or a silent success, readiness must say so, every
decision answered with a 2xx must be in the log afterwards, and the service must
recover once space comes back. Mounting needs root (CAP_SYS_ADMIN), so it is a
command, not a test. (A read-only remount is refused while SQLite holds the file
open for writing, so the read-only case stays in the in-process tests.)
"""

from __future__ import annotations

import contextlib
import http.client
import os
import shutil
import sqlite3
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scripts.devtools.bench_serve import RANK_BODY
from scripts.devtools.service_process import start_service, stop_service
from scripts.http import HttpError, JsonClient

__all__ = ["FaultsUnavailable", "run_disk_faults"]


class FaultsUnavailable(Exception):
    """The machine does not allow what the fault run needs (mounting a tmpfs)."""


@contextlib.contextmanager
def _tmpfs(size_mb: int) -> Iterator[Path]:
    root = Path(tempfile.mkdtemp(prefix="xsell-faults-"))
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(root)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        root.rmdir()
        raise FaultsUnavailable(f"cannot mount a tmpfs (needs root): {mounted.stderr.strip()}")
    try:
        yield root
    finally:
        subprocess.run(["umount", "-l", str(root)], check=False)
        root.rmdir()


def _fill(path: Path) -> None:
    """Write zeros until the filesystem refuses more."""
    with contextlib.suppress(OSError), path.open("wb") as handle:
        block = b"\0" * (1 << 20)
        while True:
            handle.write(block)
            handle.flush()
            os.fsync(handle.fileno())


_NO_ANSWER = (OSError, http.client.HTTPException, ValueError)  # refused, reset, timed out, not JSON


def _call(client: JsonClient, path: str, body: Any = None) -> tuple[int, Any]:
    """Return the status and JSON body of a POST (a GET without a body); errors are answers too."""
    try:
        return 200, client.post(path, body) if body is not None else client.get(path)
    except HttpError as error:
        return error.status, error.body


def _burst(client: JsonClient, n: int, accepted: list[str], statuses: Counter[str], phase: str) -> None:
    for i in range(n):
        event_id = f"{phase.replace(' ', '-')}-{i}"
        try:
            answer = _call(client, "/v1/rank", {**RANK_BODY, "event_id": event_id})
        except _NO_ANSWER as error:
            statuses[f"{phase}: no answer ({type(error).__name__})"] += 1
            continue
        statuses[f"{phase}: rank {_kind(answer)}"] += 1
        if answer[0] < 300:
            accepted.append(event_id)
        # feedback for the previous event, which was accepted while the disk had room
        if i and f"{phase.replace(' ', '-')}-{i - 1}" in accepted[-2:]:
            try:
                feedback = _call(
                    client, f"/v1/events/{phase.replace(' ', '-')}-{i - 1}/feedback", {"signal": "click"}
                )
                statuses[f"{phase}: feedback {_kind(feedback)}"] += 1
            except _NO_ANSWER as error:
                statuses[f"{phase}: feedback no answer ({type(error).__name__})"] += 1


def _feedback_on(client: JsonClient, event_ids: list[str], statuses: Counter[str], phase: str) -> list[str]:
    """Post a save for each event; return those answered with a 2xx."""
    saved = []
    for event_id in event_ids:
        answer = _call(client, f"/v1/events/{event_id}/feedback", {"signal": "save"})
        statuses[f"{phase}: feedback {_kind(answer)}"] += 1
        if answer[0] < 300:
            saved.append(event_id)
    return saved


def _kind(answer: tuple[int, Any]) -> str:
    status, body = answer
    if status < 300:
        return "2xx"
    return f"{status} {body.get('error')}"  # every error must be a JSON body


def _recover(client: JsonClient, seconds: float = 30.0) -> float:
    """Return how long until a rank succeeds again."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        with contextlib.suppress(*_NO_ANSWER):
            if _call(client, "/v1/rank", RANK_BODY)[0] == 200:
                return time.monotonic() - start
        time.sleep(0.2)
    raise RuntimeError(f"the service did not recover within {seconds:.0f} s")


def run_disk_faults(*, size_mb: int = 64, requests_per_phase: int = 30) -> dict[str, Any]:
    """Serve, fill the disk, free it, serve again; return what happened."""
    statuses: Counter[str] = Counter()
    accepted: list[str] = []
    result: dict[str, Any] = {}
    with _tmpfs(size_mb) as root:
        data_dir = root / "var"
        log = Path(tempfile.mkdtemp()) / "serve.log"
        env = {"XSELL_DEMO_CATALOG": "false", "XSELL_BUSY_TIMEOUT_SECONDS": "2"}
        service = start_service(data_dir, log, env=env, ready_seconds=90)
        try:
            client = JsonClient(service.url, timeout=30.0)
            _burst(client, requests_per_phase, accepted, statuses, "healthy")

            ballast = root / "ballast"
            _fill(ballast)
            _burst(client, requests_per_phase, accepted, statuses, "disk full")
            saved = _feedback_on(client, accepted[:requests_per_phase], statuses, "disk full")
            result["ready_when_full"] = _call(client, "/readyz")[0]
            ballast.unlink()
            result["recovered_after_full_seconds"] = round(_recover(client), 2)

            _burst(client, requests_per_phase, accepted, statuses, "recovered")
            result["service_alive"] = service.process.poll() is None
            client.close()  # its kept-alive connection, before the service goes
        finally:
            stop_service(service)
        conn = sqlite3.connect(data_dir / "xsell.db")
        logged = {row[0] for row in conn.execute("SELECT event_id FROM decisions")}
        saves = {row[0] for row in conn.execute("SELECT event_id FROM feedback WHERE signal = 'save'")}
        conn.close()
        shutil.copy(log, Path(tempfile.gettempdir()) / "xsell-faults-serve.log")
    result["answers"] = dict(sorted(statuses.items()))
    result["accepted"] = len(accepted)
    result["accepted_but_missing_from_log"] = sorted(set(accepted) - logged) + sorted(set(saved) - saves)
    kinds = Counter({key.split(": ", 1)[1]: n for key, n in statuses.items()})
    result["server_errors"] = sum(
        n for kind, n in kinds.items() if kind[0] == "5" and not kind.startswith("503")
    )
    return result


def render(result: dict[str, Any]) -> str:
    """Return the run as lines a person reads."""
    lines = [f"{k:<40} {v}" for k, v in result["answers"].items()]
    missing = len(result["accepted_but_missing_from_log"])
    lines += [
        f"readiness while full: {result['ready_when_full']}",
        f"recovered {result['recovered_after_full_seconds']} s after space came back",
        f"2xx decisions: {result['accepted']}; 2xx decisions or feedback missing from the log: {missing}",
        f"5xx other than 503: {result['server_errors']}; service still running: {result['service_alive']}",
    ]
    return "\n".join(lines)
