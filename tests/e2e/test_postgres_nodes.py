"""Two real `xsell serve` nodes on one PostgreSQL database; the learner's node is killed under traffic.

Each node has its own port and data directory (no shared disk): only the database
joins them. Traffic goes to both on concurrent connections, as a load balancer sends
it; a rank whose node fails is retried on the other node with the same body, as
nginx's proxy_next_upstream does (docs/deploy.md). Every wait is for a condition,
with a deadline.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import signal
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
import requests

from logs.blob_store import DatabaseBlobStore
from logs.dialect import POSTGRESQL, DatabaseUrl
from logs.model_index import ModelIndex
from logs.store import LogStore
from policies.learning.registry import ModelRegistry
from scripts.devtools.synthetic import DEVICES, SEGMENTS, SyntheticProblem
from tests.e2e.conftest import RunningService, start_service, stop_service, wait_for
from tests.e2e.postgres_checks import lock_holders, query
from tests.postgres_fixture import pg_server, pg_url

__all__ = ["pg_server", "pg_url"]

pytestmark = pytest.mark.e2e

CONNECTIONS = 4  # concurrent clients; each node runs one gunicorn worker with 4 threads


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except FileNotFoundError:
        return found
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except FileNotFoundError:
            continue
        for child in children:
            found += [child, *_descendants(child)]
    return found


def _learner_pid(node: RunningService) -> int:
    for pid in _descendants(node.process.pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        if b"learn" in command and b"scripts" in command:
            return pid
    raise AssertionError(f"no learner process under {node.process.pid}")


def _dead(pid: int) -> bool:
    """The process has exited: reaped, or a zombie waiting to be."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _kill_node(node: RunningService) -> None:
    """kill -9 every process of the node at once (a machine that loses power)."""
    pids = [node.process.pid, *_descendants(node.process.pid)]
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    node.process.wait()
    node.log_file.close()


def _versions(url: str) -> int:
    return int(query(url, "SELECT count(*) FROM models")[0][0])  # type: ignore[arg-type]


def _newest(url: str) -> str:
    return str(query(url, "SELECT version FROM models ORDER BY seq DESC LIMIT 1")[0][0])


def _lineage_values(url: str, cache: Path, problem: SyntheticProblem) -> list[tuple[str, str, float]]:
    """Every published version, its parent, and its exact expected click rate over every kind of shopper.

    Read as a third node would: the index and the files from the database alone.
    """
    database = DatabaseUrl(POSTGRESQL, conninfo=url)
    store = LogStore(database)
    try:
        registry = ModelRegistry(cache, ModelIndex(store), shared=DatabaseBlobStore(database))
        found = []
        for version, parent in query(url, "SELECT version, parent FROM models ORDER BY seq"):
            policy = registry.load(registry.find(str(version)))
            values = []
            for s, d in itertools.product(range(len(SEGMENTS)), range(len(DEVICES))):
                context = {"shopper": {"segment": SEGMENTS[s], "device": DEVICES[d]}}
                values.append(problem.value_of(policy.rank(context, problem.actions, frozenset()), (s, d)))
            found.append((str(version), str(parent), float(np.mean(values))))
        return found
    finally:
        store.close()


@dataclass
class Traffic:
    """Synthetic shoppers sent to the live nodes; what got a 2xx is remembered."""

    problem: SyntheticProblem
    nodes: list[str]
    decided: dict[str, list[str]] = field(default_factory=dict)  # event id -> chosen (2xx)
    clicked: set[str] = field(default_factory=set)  # event ids whose click got a 2xx
    values: list[tuple[int, float]] = field(default_factory=list)  # (round, served value)
    retried_elsewhere: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    rounds: int = 0

    def live(self) -> list[str]:
        with self.lock:
            return list(self.nodes)

    def drop(self, url: str) -> None:
        with self.lock:
            if url in self.nodes:
                self.nodes.remove(url)

    def one(self, index: int, session: requests.Session) -> None:
        rng = np.random.default_rng(index)
        ids = [a.id for a in self.problem.actions]
        actions = [{"id": a.id, "features": a.features} for a in self.problem.actions]
        context, key = self.problem.draw_context(rng)
        body = {"event_id": f"t-{index}", "context": context, "actions": actions}
        nodes = self.live()
        if not nodes:  # every node gone: the test has already failed, or is stopping
            return
        first = nodes[index % len(nodes)]
        answer = None
        for url in [first, *[n for n in nodes if n != first]]:
            try:
                response = session.post(f"{url}/v1/rank", json=body, timeout=30)
            except requests.RequestException:  # refused, or the answer cut off mid-way
                self.drop(url)  # the node is gone: the balancer takes it out
                continue
            if response.status_code == 200:
                answer = response.json()
                if url != first:
                    with self.lock:
                        self.retried_elsewhere += 1
                break
        if answer is None:
            return
        chosen = answer["chosen"]
        chance = {r["id"]: r["probability"] for r in answer["ranking"]}
        value = sum(chance.get(a, 0.0) * self.problem.click_probability[key][i] for i, a in enumerate(ids))
        with self.lock:
            self.decided[body["event_id"]] = chosen
            self.values.append((index, value))
        if not self.problem.clicks(rng, key, chosen[0]):
            return
        for url in self.live():
            try:
                sent = session.post(
                    f"{url}/v1/events/t-{index}/feedback", json={"signal": "click"}, timeout=30
                )
            except requests.RequestException:
                self.drop(url)
                continue
            if sent.status_code in (200, 201, 202):
                with self.lock:
                    self.clicked.add(body["event_id"])
                return

    def run(self, start: int, count: int) -> None:
        local = threading.local()

        def send(index: int) -> None:
            session = getattr(local, "session", None)
            if session is None:
                session = local.session = requests.Session()
            self.one(index, session)
            with self.lock:
                self.rounds += 1

        with ThreadPoolExecutor(CONNECTIONS) as pool:
            list(pool.map(send, range(start, start + count)))

    def served_value(self, first: int, last: int) -> float:
        with self.lock:
            found = [v for i, v in self.values if first <= i < last]
        return float(np.mean(found))


@pytest.fixture
def nodes(tmp_path: Path, pg_url: str) -> Iterator[tuple[RunningService, RunningService]]:
    env = {
        "XSELL_DATABASE_URL": pg_url,
        "XSELL_SHOPPER_ID_SECRET": "one-key-for-every-node",
        "XSELL_WORKERS": "1",
        "XSELL_THREADS": "4",
        "XSELL_REWARD_WINDOW_SECONDS": "3",
        "XSELL_FIRST_LEARN_SECONDS": "0.5",
        "XSELL_GUARDRAIL_ENABLED": "false",
        "XSELL_DEMO_CATALOG": "false",
        "XSELL_VW_ARGS": "--cb_explore_adf --epsilon 0.2 -q ::",
    }
    a = start_service(tmp_path / "a", **env)
    started = [a]
    try:
        # Node a starts first, so its learner leads; node b's stands by.
        wait_for(lambda: "learner lock taken" in a.log(), "node a's learner takes the lock", 120)
        b = start_service(tmp_path / "b", **env)
        started.append(b)
        wait_for(lambda: "waiting as standby" in b.log(), "node b's learner stands by", 120)
        yield a, b
    finally:
        for node in started:
            if node.process.poll() is None:
                stop_service(node)


def test_two_nodes_share_the_log_and_a_killed_learner_node_loses_nothing(
    nodes: tuple[RunningService, RunningService], pg_url: str, tmp_path: Path
) -> None:
    a, b = nodes
    assert a.data_dir != b.data_dir
    assert lock_holders(pg_url) == 1  # exactly one learner leads

    # A retry on the other node gets the first answer; a reused event id is 409 on both.
    problem = SyntheticProblem(seed=7)
    actions = [{"id": x.id, "features": x.features} for x in problem.actions]
    body = {"event_id": "retry-1", "context": {"shopper": {"segment": "pro"}}, "actions": actions}
    first = requests.post(f"{a.url}/v1/rank", json=body, timeout=30)
    again = requests.post(f"{b.url}/v1/rank", json=body, timeout=30)
    assert first.status_code == again.status_code == 200
    assert again.json()["chosen"] == first.json()["chosen"]
    assert again.json()["model_version"] == first.json()["model_version"]
    reused = {**body, "context": {"shopper": {"segment": "gift"}}}
    for node in (a, b):
        refused = requests.post(f"{node.url}/v1/rank", json=reused, timeout=30)
        assert refused.status_code == 409, refused.text

    traffic = Traffic(problem, [a.url, b.url])
    traffic.run(0, 800)  # both nodes answer; a's learner learns
    wait_for(lambda: _versions(pg_url) > 1, "node a's learner publishes while both nodes serve", 120)
    before_kill = _versions(pg_url)
    assert lock_holders(pg_url) == 1

    # kill -9 the whole leading node while traffic runs.
    learner = _learner_pid(a)
    under_load = threading.Thread(target=traffic.run, args=(800, 2000))
    under_load.start()
    wait_for(lambda: traffic.rounds >= 1000, "traffic is running when the node dies", 120)
    _kill_node(a)
    at_kill = _newest(pg_url)
    # SIGKILL lands when the process is next scheduled: on a loaded machine it may still be runnable.
    wait_for(lambda: _dead(learner), "the killed node's learner is gone", 30)
    wait_for(lambda: "learner lock taken" in b.log(), "node b's standby learner takes over", 30)
    under_load.join(timeout=600)
    assert not under_load.is_alive()
    assert traffic.live() == [b.url]
    wait_for(lambda: _versions(pg_url) > before_kill + 2, "node b's learner publishes new versions", 120)
    assert lock_holders(pg_url) == 1

    # No decision or click that got a 2xx is lost.
    decided = set(traffic.decided)
    stored = {
        str(row[0]) for row in query(pg_url, "SELECT event_id FROM decisions WHERE event_id LIKE 't-%%'")
    }
    assert decided <= stored, sorted(decided - stored)[:10]
    clicks = {
        str(row[0])
        for row in query(
            pg_url, "SELECT event_id FROM feedback WHERE event_id LIKE 't-%%' AND signal = 'click'"
        )
    }
    assert traffic.clicked <= clicks, sorted(traffic.clicked - clicks)[:10]
    # Every decision is learned once its time comes, by whichever learner leads then.
    wait_for(
        lambda: (
            not query(pg_url, "SELECT 1 FROM decisions WHERE learned_in IS NULL AND event_id LIKE 't-%%'")
        ),
        "every decision learned",
        120,
    )

    # No event was learned twice and none never: the newest version learned, in its
    # lineage across both learners, one update per decision plus one per click learned
    # after its decision (a correction: always in a later version than the decision's,
    # since a learner never corrects an event it has not yet published). One statement,
    # so every count comes from one snapshot.
    unlearned = "SELECT 1 FROM decisions WHERE learned_in IS NULL"
    wait_for(lambda: not query(pg_url, unlearned), "all learned", 120)
    [(newest, learned, decisions, corrected)] = query(
        pg_url,
        "SELECT m.version, m.events_learned, (SELECT count(*) FROM decisions),"
        " (SELECT count(*) FROM feedback f JOIN decisions d USING (event_id)"
        "  WHERE f.learned_in IS NOT NULL AND f.learned_in <> d.learned_in)"
        " FROM models m ORDER BY m.seq DESC LIMIT 1",
    )
    print(f"{newest} learned {learned}: {decisions} decisions, {corrected} corrections")
    assert learned == decisions + corrected  # type: ignore[operator]

    # The model kept improving after the takeover: the served distribution's expected
    # click rate on the synthetic problem (uniform is about 0.14, the best 0.5).
    # The takeover learner went on from the snapshot at the kill (its first version's
    # parent), learning each event once (above), and its models stay well above uniform
    # (about 0.14; the best is 0.5) on average. Not its last version against the one at
    # the kill: with a learner that keeps exploring, successive snapshots on this problem
    # swing by 0.1 or more either way (0.389, 0.258, 0.343, 0.222 in a row were seen).
    lineage = _lineage_values(pg_url, tmp_path / "cache", problem)
    names = [version for version, _, _ in lineage]
    kill = names.index(at_kill)
    after = lineage[kill + 1 :]
    assert after, "node b's learner published nothing"
    assert after[0][1] == at_kill, (at_kill, after[0])  # b's first version's parent: a's last
    trajectory = [round(traffic.served_value(i, i + 400), 3) for i in range(0, 2800, 400)]
    mean_after = float(np.mean([value for _, _, value in after]))
    print(
        f"served per 400 rounds {trajectory}; versions {[(v, round(x, 3)) for v, _, x in lineage]};"
        f" killed at {at_kill}; {traffic.retried_elsewhere} ranks retried on the other node"
    )
    assert mean_after >= problem.uniform_value + 0.06, lineage  # 0.29 over several runs
