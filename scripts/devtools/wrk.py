"""Drive one endpoint with wrk (the C load generator) and read its figures back.

wrk is used when it is on PATH (Debian: ``apt-get install wrk``): it needs a
fraction of the CPU the Python clients need, so more of the machine's two cores go
to the service being measured. A small Lua script sets the method and body, and its
``done`` hook prints one JSON line with the counts and latency percentiles.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

__all__ = ["WrkResult", "available", "collected_events", "parse_output", "run_wrk"]

MARKER = "XSELL_WRK "

_DONE = """
function done(summary, latency, requests)
  local errors = summary.errors
  io.write(string.format(
    '%s{"requests": %d, "duration_us": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, '
    .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "status_errors": %d, '
    .. '"timeouts": %d}\\n',
    "MARKER", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    errors.connect, errors.read, errors.write, errors.status, errors.timeout))
end
""".replace("MARKER", MARKER)

# Numbers wrk's threads 1, 2, ... as the global `id` each thread's script sees.
_THREAD_IDS = """
local counter = 0
function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
end
"""

# Each thread writes the event ids it was given to its own file, for the feedback run.
_COLLECT = (
    _THREAD_IDS
    + """
function init(args)
  ids = io.open(args[1] .. "/ids-" .. id .. ".txt", "w")
end
function response(status, headers, body)
  local event = string.match(body, '"event_id":"([^"]+)"')
  if event then ids:write(event, "\\n") end
end
"""
)

# Threads share one list of event ids, each walking its own stride of it; a signal
# rotates per pass so a repeated id still carries new feedback, not a duplicate.
_FEEDBACK = (
    _THREAD_IDS
    + """
function init(args)
  events = {}
  for line in io.lines(args[1]) do events[#events + 1] = line end
  threads = tonumber(args[2])
  position = id
  signals = {"click", "save", "add_to_cart", "purchase"}
end
function request()
  local event = events[((position - 1) % #events) + 1]
  local pass = math.floor((position - 1) / #events) % #signals + 1
  position = position + threads
  return wrk.format("POST", "/v1/events/" .. event .. "/feedback",
    {["Content-Type"] = "application/json"}, '{"signal":"' .. signals[pass] .. '"}')
end
"""
)


@dataclass(frozen=True, slots=True)
class WrkResult:
    requests: int
    seconds: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    errors: int  # connection, read, write, timeout and non-2xx/3xx answers together

    @property
    def requests_per_second(self) -> float:
        return self.requests / self.seconds


def available() -> bool:
    """Return whether a wrk binary is on PATH."""
    return shutil.which("wrk") is not None


def parse_output(text: str) -> WrkResult:
    """Read the JSON line the ``done`` hook printed among wrk's own output."""
    for line in text.splitlines():
        if line.startswith(MARKER):
            figures = json.loads(line.removeprefix(MARKER))
            errors = sum(figures[k] for k in figures if k.endswith("_errors") or k == "timeouts")
            return WrkResult(
                requests=figures["requests"],
                seconds=figures["duration_us"] / 1e6,
                p50_ms=figures["p50_us"] / 1000,
                p90_ms=figures["p90_us"] / 1000,
                p99_ms=figures["p99_us"] / 1000,
                errors=errors,
            )
    raise ValueError(f"wrk printed no figures:\n{text[-2000:]}")


def run_wrk(
    url: str,
    path: str,
    body: bytes | None,
    *,
    seconds: float,
    connections: int,
    threads: int = 2,
    collect_ids_to: Path | None = None,
    feedback_ids: Path | None = None,
) -> WrkResult:
    """Load `url + path` for `seconds`; POST `body`, or feedback for the ids in `feedback_ids`."""
    script = _DONE
    args: list[str] = []
    if feedback_ids is not None:
        script += _FEEDBACK
        args = [str(feedback_ids), str(threads)]
    else:
        assert body is not None
        script += f'wrk.method = "POST"\nwrk.body = {_lua_string(body.decode())}\n'
        script += 'wrk.headers["Content-Type"] = "application/json"\n'
        if collect_ids_to is not None:
            script += _COLLECT
            args = [str(collect_ids_to)]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        command = [
            "wrk",
            f"-t{threads}",
            f"-c{max(connections, threads)}",
            f"-d{max(1, round(seconds))}s",
            "--timeout",
            "10s",
            "-s",
            handle.name,
            url + path,
        ]
        if args:
            command += ["--", *args]
        finished = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 60, check=False)
    finally:
        Path(handle.name).unlink()
    if finished.returncode != 0:
        raise RuntimeError(f"wrk failed ({finished.returncode}): {finished.stderr.strip()}")
    return parse_output(finished.stdout)


def _lua_string(text: str) -> str:
    """Quote `text` as a Lua long string (no escaping needed for JSON bodies)."""
    level = "="
    while f"]{level}]" in text:
        level += "="
    return f"[{level}[{text}]{level}]"


def collected_events(ids: Path, into: Path) -> Path:
    """Join the event ids each wrk thread collected (``collect_ids_to=ids``) into one file for feedback."""
    into.write_text("".join(p.read_text() for p in sorted(ids.iterdir())))
    return into
