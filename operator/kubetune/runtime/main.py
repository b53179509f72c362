"""`kubetune operator`: run the kopf operator (also `python -m kubetune.runtime`)."""

from __future__ import annotations

import argparse
import logging
import sys

import kopf

from kubetune.render import RenderSettings
from kubetune.runtime import handlers, metrics  # noqa: F401  (registers the handlers)


def run(
    namespaces: list[str],
    trainer_image: str,
    metrics_port: int,
    health_port: int,
    standalone: bool,
    verbose: bool = False,
) -> None:
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    metrics.serve(metrics_port)
    memo = kopf.Memo(trainer_image=trainer_image)
    kopf.run(
        clusterwide=not namespaces,
        namespaces=namespaces,
        standalone=standalone or None,
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
    parser.add_argument("--verbose", "-v", action="store_true")
    args = parser.parse_args(argv)
    run(
        args.namespace,
        args.trainer_image,
        args.metrics_port,
        args.health_port,
        args.standalone,
        args.verbose,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
