"""Faults the operator must ride out, on the real local control plane: SIGKILLs in the middle
of a burst, and the API server gone for 30 s. Each ends with every job converged and exactly
one PyTorchJob and one set of children per job.

The figures (jobs, kills, convergence time) are printed; run with `-s` to see them.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable
from pathlib import Path

from kubetune.render.metadata import JOB_LABEL
from tests.support.kube import Kube, eventually
from tests.support.operator import COMPLETE_DELAY, Operator, quiet_restart, tiny
from tests.support.processes import Component

CHILD_KINDS = (
    "persistentvolumeclaims",
    "configmaps",
    "serviceaccounts",
    "rolebindings",
    "pytorchjobs",
)


def phases(kube: Kube) -> dict[str, str | None]:
    return {
        j["metadata"]["name"]: (j.get("status") or {}).get("phase")
        for j in kube.get("finetunejobs")
    }


def converge(
    kube: Kube, phase: str, timeout: float, tick: Callable[[], object] | None = None
) -> None:
    """Wait until every job is in `phase`, calling `tick` on every poll; on timeout, name the
    others and their conditions."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tick is not None:
            tick()
        if all(p == phase for p in phases(kube).values()):
            return
        time.sleep(2)
    others = [j for j in kube.get("finetunejobs") if (j.get("status") or {}).get("phase") != phase]
    report = [
        (j["metadata"]["name"], (j.get("status") or {}).get("conditions")) for j in others[:5]
    ]
    pytorchjobs = {p["metadata"]["name"]: p for p in kube.get("pytorchjobs")}
    stuck = others[0]["metadata"]["name"]
    pods = [
        (p["metadata"]["name"], p["status"].get("phase"), p["spec"].get("nodeName"))
        for p in kube.get("pods", selector=f"{JOB_LABEL}={stuck}")
    ]
    raise AssertionError(
        f"{len(others)} jobs not {phase} after {timeout} s, e.g. {report}; "
        f"of them with a PyTorchJob: {sum(j['metadata']['name'] in pytorchjobs for j in others)}; "
        f"{stuck}: pods {pods}, PyTorchJob status {pytorchjobs.get(stuck, {}).get('status')}"
    )


def one_set_of_children_each(kube: Kube, names: list[str]) -> None:
    """Every job has exactly one child of each kind, owned by that very job (its uid)."""
    uids = {j["metadata"]["name"]: j["metadata"]["uid"] for j in kube.get("finetunejobs")}
    assert sorted(uids) == sorted(names)
    for kind in CHILD_KINDS:
        children = kube.get(kind, selector=JOB_LABEL)
        owners = [c["metadata"]["labels"][JOB_LABEL] for c in children]
        assert sorted(owners) == sorted(names), f"{kind}: {len(children)} for {len(names)} jobs"
        for child in children:
            refs = child["metadata"].get("ownerReferences") or []
            if kind == "persistentvolumeclaims" and not refs:
                continue  # storage.keepOnDelete claims carry no owner
            owner = child["metadata"]["labels"][JOB_LABEL]
            assert [r["uid"] for r in refs] == [uids[owner]], (kind, child["metadata"]["name"])


def test_operator_sigkilled_ten_times_during_a_200_job_burst(
    ftj_crd: Kube, kube: Kube, tmp_path: Path
) -> None:
    """Jobs are created suspended (as in bench/operator_burst.py): the create path is under
    test, not kwok's pod churn. The operator is SIGKILLed at random moments while the burst is
    created and worked on, then started once more; every job must end Suspended with its
    children, none twice."""
    seed = int(os.environ.get("KUBETUNE_FAULT_SEED", time.time()))
    rng = random.Random(seed)
    names = [f"burst-{i:03d}" for i in range(200)]
    # A class no volume has: the 200 claims stay Pending instead of taking the cluster's pool
    # of volumes from the tests after this one.
    unbound = {"spec.runPolicy.suspend": True, "spec.storage.storageClassName": "no-volumes"}
    docs = [tiny(n, **unbound) for n in names]

    def create() -> None:
        for i in range(0, len(docs), 20):  # a stream of creates, as from a pipeline
            kube.apply(*docs[i : i + 20])

    creator = threading.Thread(target=create)
    kills = []
    started = time.monotonic()
    for i in range(10):
        operator = Operator(ftj_crd.kubeconfig, str(tmp_path / f"op-{i}.log"))
        if i == 0:
            creator.start()
        time.sleep(rng.uniform(0.2, 3.0))
        kills.append(round(time.monotonic() - started, 1))
        operator.stop(kill=True)
    creator.join()
    made = len(kube.get("pytorchjobs"))
    last = Operator(ftj_crd.kubeconfig, str(tmp_path / "op-last.log"))
    restarted = time.monotonic()
    try:
        converge(kube, "Suspended", timeout=180)
        converged = time.monotonic() - restarted
        one_set_of_children_each(kube, names)
        assert "Traceback" not in last.output(), last.output()[-3000:]
    finally:
        last.stop()
    # A quiet restart: over 200 settled jobs a new operator reconciles each (its count of jobs
    # by phase reaches 200) and writes nothing.
    indexed = quiet_restart(ftj_crd.kubeconfig, str(tmp_path / "op-quiet.log"), len(names))
    print(
        f"\nfault: 200-job burst, 10 SIGKILLs at {kills} s (seed {seed}); "
        f"{made} PyTorchJobs before the last start; all converged {converged:.1f} s after it; "
        f"a quiet restart reconciled all 200 in {indexed:.1f} s with 0 writes"
    )


def ready(kube: Kube) -> Callable[[], bool]:
    def check() -> bool:
        try:
            return kube.run("get", "--raw", "/readyz", namespaced=False).strip() == "ok"
        except Exception:
            return False

    return check


def test_operator_recovers_from_a_30s_api_server_outage(
    ftj_crd: Kube, kube: Kube, tmp_path: Path
) -> None:
    """Jobs are in flight (pods running on kwok's GPU nodes, finishing after 20 s) when the API
    server stops; 30 s later it starts again. The same operator process, never restarted,
    brings every job to Succeeded."""
    operator = Operator(ftj_crd.kubeconfig, str(tmp_path / "operator.log"))
    apiserver = Component.of_control_plane(ftj_crd.kubeconfig, "kube-apiserver")
    # They exit when they cannot renew their leader lease; a kubelet would restart them.
    leaders = [
        Component.of_control_plane(ftj_crd.kubeconfig, name)
        for name in ("kube-controller-manager", "kube-scheduler")
    ]
    names = [f"outage-{i:02d}" for i in range(12)]
    slow = {"spec.podMetadata": {"annotations": {COMPLETE_DELAY: "20s"}}}
    try:
        kube.apply(*(tiny(n, **slow) for n in names[:8]))
        eventually(
            lambda: sum(p == "Training" for p in phases(kube).values()) >= 4,
            timeout=120,
            what="jobs to be training",
        )
        kube.apply(*(tiny(n, **slow) for n in names[8:]))  # just created: in the operator's queue
        apiserver.stop()
        down = time.monotonic()
        time.sleep(30)
        assert operator.proc.poll() is None, "the operator exited while the API server was down"
        apiserver.start()
        eventually(ready(kube), timeout=120, what="the API server to be ready again")
        back = time.monotonic()
        restarts: list[str] = []

        def supervise() -> None:
            """A kubelet's job: a leader exits when it cannot renew its lease, during the
            outage or just after it, so every poll restarts any that exited."""
            for leader in leaders:
                if not leader.alive():
                    restarts.append(f"{leader.name} at +{time.monotonic() - back:.0f} s")
                    leader.start()

        try:
            converge(kube, "Succeeded", timeout=240, tick=supervise)
        except AssertionError as stuck:
            logs = "\n".join(
                f"--- {c.name} (running: {c.alive()}), last lines of {c.log}:\n"
                + "\n".join(Path(c.log).read_text(errors="replace").splitlines()[-15:])
                for c in leaders
            )
            raise AssertionError(f"{stuck}\nrestarts: {restarts}\n{logs}") from None
        converged = time.monotonic() - back
        assert operator.proc.poll() is None, "the operator restarted"
        assert operator.healthy()
        one_set_of_children_each(kube, names)
    finally:
        if not apiserver.alive():
            apiserver.start()
            eventually(ready(kube), timeout=120, what="the API server to be ready again")
        for leader in leaders:
            if not leader.alive():
                leader.start()
        operator.stop()
    print(
        f"\nfault: API server down {back - down:.0f} s with {len(names)} jobs in flight; "
        f"all Succeeded {converged:.1f} s after it was back, operator not restarted "
        f"(started again after exiting with their lease, as a kubelet would: "
        f"{', '.join(restarts) or 'none'})"
    )
