"""`kubetune api`: start the OpenAI-compatible fine-tuning API on uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from kubetune.openai_api.app import Settings, create_app
from kubetune.openai_api.cache import JobCache
from kubetune.openai_api.catalog import Catalog
from kubetune.openai_api.files import FilesystemStore
from kubetune.openai_api.kube import Cluster


def serve(
    *,
    host: str,
    port: int,
    catalog: Path,
    files_dir: Path,
    files_claim: str,
    namespace: str | None,
    kubeconfig: str | None,
    max_file_bytes: int,
    tls_cert: str | None = None,
    tls_key: str | None = None,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    files_dir.mkdir(parents=True, exist_ok=True)
    cluster = Cluster(kubeconfig)
    cache = JobCache(cluster.own)
    cache.start()
    app = create_app(
        cluster,
        FilesystemStore(files_dir, files_claim),  # an object-storage store plugs in here
        Settings(Catalog.load(catalog), namespace, max_file_bytes),
        cache,
    )
    uvicorn.run(
        app,
        host=host,
        port=port,
        ssl_certfile=tls_cert,
        ssl_keyfile=tls_key,
        log_level="info",
    )
