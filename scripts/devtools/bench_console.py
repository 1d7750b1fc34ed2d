"""`xsell bench console`: console figures and pages against a log of a million decisions.

Builds a log the way the service would have written it (shared candidate sets and
contexts, a model version every two seconds, clicks, purchases, dismissals, late
feedback, pacing verdicts) with bulk inserts, runs the learner's health chores over
it, then times every loop-health function, /metrics and every console page through
the Flask test client. Each figure is also given as a ratio to a trivial endpoint
(GET /healthz) timed in the same run, and beside one full scan of the log (what a
page reading the log itself would pay at least once).
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import orjson

from logs import payloads
from policies.learning.rewards import RewardRules
from service.app import create_app
from service.loop_chores import HealthChores
from service.settings import Settings

__all__ = ["ConsoleBench", "render", "run_console_bench"]

TARGET_MS = 300.0
RATE_PER_SECOND = 100.0  # decisions per second of simulated time
WINDOW_SECONDS = 600.0
ADMIN_KEY = "bench-admin-key-0123456789"
CATEGORIES = ("tripod", "memory_card", "camera_bag", "lens", "battery", "charger", "filter", "strap")
DEVICES = ("mobile", "desktop", "tablet")
SEGMENTS = ("new", "returning", "pro", "bargain")


@dataclass(frozen=True)
class Timing:
    name: str
    ms: float  # median of the repeats
    best_ms: float
    ratio: float  # to the baseline
    status: int | None = None  # HTTP status for pages


@dataclass(frozen=True)
class ConsoleBench:
    decisions: int
    feedback: int
    build_seconds: float
    roll_seconds: float
    estimate_seconds: float
    drift_seconds: float
    baseline_ms: float
    full_scan_ms: float
    timings: list[Timing]
    note: str


def _settings(data_dir: Path) -> Settings:
    return Settings(  # type: ignore[call-arg]
        data_dir=data_dir,
        reward_window_seconds=WINDOW_SECONDS,
        admin_api_keys=ADMIN_KEY,
        demo_catalog=False,
    )


def build_log(app_store: object, n: int, *, end: float, seed: int = 1) -> int:
    """Bulk-insert `n` decisions ending at `end` and their feedback; return how many feedback rows."""
    conn = app_store.conn  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    sets = []
    for k in range(60):  # candidate sets /v1/offers would draw from a catalog
        ids = [f"sku-{(k * 7 + j) % 500:03d}" for j in range(6)]
        actions = [
            {"id": i, "features": {"offer": {"category": CATEGORIES[zlib.crc32(i.encode()) % 8]}}}
            for i in ids
        ]
        data = orjson.dumps(actions)
        sets.append((payloads.digest(data), data, ids))
    contexts = []
    for device in DEVICES:
        for segment in SEGMENTS:
            for category in CATEGORIES:
                data = orjson.dumps(
                    {"shopper": {"device": device, "segment": segment}, "cart": {"kind": category}}
                )
                contexts.append((payloads.digest(data), data))
    conn.execute("BEGIN")
    for key, data, _ in sets:
        payloads.put(conn, key, data)
    for key, data in contexts:
        payloads.put(conn, key, data)
    conn.execute("COMMIT")
    start = end - n / RATE_PER_SECOND

    def row_version(at: float) -> int:
        return 2 + int((at - start) // 2)  # a new model every two seconds

    created = np.sort(rng.uniform(start, end, n))
    set_of = rng.integers(0, len(sets), n)
    context_of = rng.integers(0, len(contexts), n)
    chosen = rng.integers(0, 6, n)
    top = rng.integers(0, 6, n)
    uniform = rng.random(n)
    feedback_rows = []
    batch = []
    columns = (
        "event_id, created_at, closes_at, model_version, request_sha256, context, actions, context_ref,"
        " actions_ref, excluded, probabilities, choices, slots, deferred, exploration_share,"
        " served_baseline, learn_at, learned_in"
    )
    insert = f"INSERT INTO decisions ({columns}) VALUES ({', '.join('?' * 18)})"

    def flush() -> None:
        conn.execute("BEGIN")
        conn.executemany(insert, batch)
        conn.execute("COMMIT")
        batch.clear()

    for i in range(n):
        at = float(created[i])
        probabilities = [0.05] * 6
        probabilities[int(top[i])] = 0.75
        pick = int(chosen[i]) if uniform[i] < 0.3 else int(top[i])
        action = sets[set_of[i]][2][pick]
        version = f"v{row_version(at)}"
        event_id = f"b{i:08d}"
        batch.append(
            (
                event_id,
                at,
                at + WINDOW_SECONDS,
                version,
                event_id,
                "",
                "",
                contexts[context_of[i]][0],
                sets[set_of[i]][0],
                "[]",
                orjson.dumps(probabilities).decode(),
                orjson.dumps([{"slot": 0, "action_id": action, "probability": probabilities[pick]}]).decode(),
                1,
                0,
                0.0,
                0,
                at + 0.5,
                version if at < end - 5 else None,
            )
        )
        _feedback(rng, feedback_rows, event_id, action, at)
        if len(batch) >= 20_000:
            flush()
    if batch:
        flush()
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO feedback (event_id, action_id, signal, value, dedupe_key, received_at, on_time)"
        " VALUES (?, ?, ?, ?, ?, ?, ?)",
        sorted(feedback_rows, key=lambda row: row[5]),
    )
    versions = sorted({row_version(t) for t in (start, end)})
    conn.executemany(  # the model index knows every version that served, as the learner left it
        "INSERT OR IGNORE INTO models (version, parent, kind, vw_args, created_at, events_learned, sha256,"
        " path, state) VALUES (?, ?, 'vw', '', ?, 0, '', '', 'retired')",
        [(f"v{k}", f"v{k - 1}", start + 2 * (k - 2)) for k in range(versions[0], versions[-1] + 1)],
    )
    reasons = ("session_cap", "cool_down", "cart_full", "fatigue")
    conn.executemany(
        "INSERT INTO pacing_log (at, shopper_key, event_id, verdict, reason) VALUES (?, NULL, NULL, ?, ?)",
        [
            (float(t), "none" if k % 3 else "fewer", reasons[k % 4])
            for k, t in enumerate(created[:: max(n // 20_000, 1)])
        ],
    )
    conn.execute("COMMIT")
    return len(feedback_rows)


def _feedback(rng: np.random.Generator, rows: list[tuple], event_id: str, action: str, at: float) -> None:
    draw = rng.random()
    if draw < 0.15:  # a click, and for some a purchase minutes later
        delay = float(rng.exponential(20.0))
        rows.append((event_id, action, "click", None, "click", at + delay, int(delay <= WINDOW_SECONDS)))
        if draw < 0.03:
            later = delay + float(rng.exponential(180.0))
            rows.append(
                (event_id, action, "purchase", 120.0, "purchase", at + later, int(later <= WINDOW_SECONDS))
            )
    elif draw < 0.20:
        delay = float(rng.exponential(8.0))
        rows.append((event_id, action, "dismiss", None, "dismiss", at + delay, int(delay <= WINDOW_SECONDS)))


def _time(operation: Callable[[], object], repeats: int) -> tuple[float, float, object]:
    laps = []
    result = None
    for _ in range(repeats):
        started = time.perf_counter()
        result = operation()
        laps.append((time.perf_counter() - started) * 1000)
    return statistics.median(laps), min(laps), result


def run_console_bench(
    decisions: int = 1_000_000, *, repeats: int = 5, data_dir: Path | None = None
) -> ConsoleBench:
    """Build the log, run the chores, time every figure and page."""
    from service import loop_health

    holder = None if data_dir is not None else tempfile.TemporaryDirectory(prefix="xsell-bench-console-")
    root = data_dir if data_dir is not None else Path(holder.name)  # type: ignore[union-attr]
    try:
        app = create_app(_settings(root))
        res = app.extensions["xsell"]
        res.registry.ensure_initial(res.settings.vw_args)
        store = res.store
        started = time.perf_counter()
        end = time.time()
        feedback = build_log(store, decisions, end=end)
        build_seconds = time.perf_counter() - started
        chores = HealthChores(
            store, rules=RewardRules, window_seconds=lambda: WINDOW_SECONDS, grace_seconds=0.5
        )
        roll_seconds, _, _ = _time(lambda: chores.roll(max_rows=10 * decisions), 1)
        estimate_seconds, _, _ = _time(lambda: chores.estimate(hours=1000), 1)
        drift_seconds, _, _ = _time(chores.check_drift, 1)
        client = _Https(app.test_client())  # the console's cookie is Secure
        baseline, _, _ = _time(lambda: client.get("/healthz"), repeats * 4)
        full_scan, _, _ = _time(
            lambda: store.conn.execute(
                "SELECT model_version, count(*) FROM decisions GROUP BY model_version"
            ).fetchall(),
            1,
        )
        timings = []
        functions = {
            "loop_health()": lambda: loop_health.loop_health(store),
            "learning()": lambda: loop_health.learning(store),
            "offers()": lambda: loop_health.offers(store),
        }
        for name, operation in functions.items():
            ms, best, _ = _time(operation, repeats)
            timings.append(Timing(name, ms, best, ms / baseline))
        headers = {"Authorization": f"Bearer {ADMIN_KEY}"}
        pages = ["GET /metrics"]
        note = _sign_in(client)
        pages += [f"GET {rule}" for rule in _console_pages(app)]
        for page in pages:
            path = page.split(" ", 1)[1]
            ms, best, response = _time(lambda p=path: client.get(p, headers=headers), repeats)
            timings.append(Timing(page, ms, best, ms / baseline, response.status_code))  # type: ignore[attr-defined]
        store.close()
        return ConsoleBench(
            decisions,
            feedback,
            build_seconds,
            roll_seconds / 1000,
            estimate_seconds / 1000,
            drift_seconds / 1000,
            baseline,
            full_scan,
            timings,
            note,
        )
    finally:
        if holder is not None:
            holder.cleanup()


class _Https:
    """The test client over https, so a Secure cookie is sent back."""

    def __init__(self, client: object):
        self.client = client

    def get(self, path: str, **options: object) -> object:
        return self.client.get(path, base_url="https://localhost", **options)  # type: ignore[attr-defined]

    def post(self, path: str, **options: object) -> object:
        return self.client.post(path, base_url="https://localhost", **options)  # type: ignore[attr-defined]


def _console_pages(app: object) -> list[str]:
    """Every console page that takes no path parameter (the event inspector with a real event id)."""
    rules = sorted(
        rule.rule
        for rule in app.url_map.iter_rules()  # type: ignore[attr-defined]
        if rule.rule.startswith("/console")
        and "GET" in rule.methods
        and not rule.arguments
        and "static" not in rule.endpoint
        and not rule.rule.endswith("signin")
    )
    return [f"{r}?event_id=b00000010" if r.rstrip("/").endswith("events") else r for r in rules]


def _sign_in(client: object) -> str:
    """Sign in to the console with the admin key (its form may carry a CSRF token)."""
    form = client.get("/console/signin")  # type: ignore[attr-defined]
    if form.status_code == 404:
        return "no console in this build: pages not timed"
    fields = {"key": ADMIN_KEY}
    token = re.search(rb'name="csrf[^"]*"\s+value="([^"]+)"', form.data)
    if token:
        fields["csrf"] = token.group(1).decode()
    answer = client.post("/console/signin", data=fields)  # type: ignore[attr-defined]
    return "" if answer.status_code in (302, 303) else f"console sign-in answered {answer.status_code}"


def render(found: ConsoleBench) -> str:
    """A table: milliseconds per figure and page, against the baseline and the 300 ms target."""
    rolled_per_second = found.decisions / max(found.roll_seconds, 1e-9)
    lines = [
        f"{found.decisions:,} decisions, {found.feedback:,} feedback rows"
        f" (built in {found.build_seconds:.1f} s)",
        f"learner chores: rollups {found.roll_seconds:.1f} s ({rolled_per_second:,.0f} decisions/s),"
        f" estimates {found.estimate_seconds:.2f} s, drift {found.drift_seconds * 1000:.0f} ms",
        f"baseline GET /healthz {found.baseline_ms:.2f} ms;"
        f" one full scan of the log {found.full_scan_ms:.0f} ms",
        "",
        f"{'figure or page':<40} {'median ms':>10} {'best ms':>9} {'x baseline':>11} {'status':>7}"
        f"  < {TARGET_MS:.0f} ms",
    ]
    for t in found.timings:
        ok = "yes" if t.ms < TARGET_MS and (t.status is None or t.status < 400) else "NO"
        status = "" if t.status is None else str(t.status)
        lines.append(f"{t.name:<40} {t.ms:10.1f} {t.best_ms:9.1f} {t.ratio:11.1f} {status:>7}  {ok}")
    if found.note:
        lines.append(f"\nnote: {found.note}")
    return "\n".join(lines)


def as_dict(found: ConsoleBench) -> dict[str, object]:
    return asdict(found)
