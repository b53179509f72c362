"""`kubetune operator`: run the kopf operator (also `python -m kubetune.runtime`)."""

from __future__ import annotations

import argparse
import logging
import random
import sys

import kopf

from kubetune.render import RenderSettings

# handlers, indexes and metrics register themselves with kopf when imported
from kubetune.runtime import handlers, indexes, metrics, readiness, slim  # noqa: F401
from kubetune.runtime.kube import Kube


def ensure_peering(kube: Kube, name: str, namespaces: list[str]) -> None:
    """The peering object(s) replicas meet at: one ClusterKopfPeering when watching every
    namespace, a KopfPeering in each watched namespace otherwise (idempotent)."""
    scopes: list[str | None] = list(namespaces) or [None]
    for namespace in scopes:
        kind = "KopfPeering" if namespace else "ClusterKopfPeering"
        metadata = {"name": name, **({"namespace": namespace} if namespace else {})}
        kube.apply({"apiVersion": "kopf.dev/v1", "kind": kind, "metadata": metadata})


def run(
    namespaces: list[str],
    trainer_image: str,
    metrics_port: int,
    health_port: int,
    standalone: bool,
    verbose: bool = False,
    peering: str = "kubetune",
    priority: int | None = None,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    metrics.serve(metrics_port)
    readiness.install()  # kopf's start-up gate in linear time (readiness.py)
    slim.install()  # watched objects cut to what the handlers read (slim.py)
    memo = kopf.Memo(trainer_image=trainer_image)
    settings = kopf.OperatorSettings()
    if not standalone:
        # Replicas share one peering object; the highest priority works, the others wait and
        # take over when it stops (a graceful stop hands over at once, a crash after the
        # peer's lifetime). Equal priorities would freeze them all, so each picks its own.
        settings.peering.name = peering
        settings.peering.mandatory = True  # no peering object → fail, never run uncoordinated
        settings.peering.priority = (
            priority if priority is not None else random.SystemRandom().randint(1, 2**30)
        )
        ensure_peering(Kube.connect(), peering, namespaces)
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=standalone or None,
        settings=settings,
        liveness_endpoint=f"http://0.0.0.0:{health_port}/healthz" if health_port else None,
        memo=memo,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubetune operator", description=__doc__)
    parser.add_argument(
        "--namespace",
        "-n",
        action="append",
        default=[],
        help="watch this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument("--trainer-image", default=RenderSettings().trainer_image)
    parser.add_argument("--metrics-port", type=int, default=9090, help="0 disables")
    parser.add_argument("--health-port", type=int, default=8080, help="0 disables")
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="no peering (one replica); by default replicas coordinate via peering",
    )
    parser.add_argument(
        "--peering",
        default="kubetune",
        help="the (Cluster)KopfPeering object replicas coordinate through (default: kubetune)",
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority (default: random, so replicas never tie)",
    )
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    run(
        args.namespace,
        args.trainer_image,
        args.metrics_port,
        args.health_port,
        args.standalone,
        args.verbose,
        args.peering,
        args.priority,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
