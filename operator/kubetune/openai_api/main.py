"""`kubetune api`: start the OpenAI-compatible fine-tuning API on uvicorn."""

from __future__ import annotations

import logging
from pathlib import Path

import uvicorn

from kubetune.openai_api.app import Settings, create_app
from kubetune.openai_api.cache import JobCache
from kubetune.openai_api.catalog import Catalog
from kubetune.openai_api.files import FileStore, FilesystemStore
from kubetune.openai_api.kube import Cluster
from kubetune_api.s3_spec import S3Connection


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
    files_s3: str | None = None,
    files_s3_connection: S3Connection | None = None,
) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    store: FileStore
    if files_s3:
        from kubetune.openai_api.s3_files import S3FileStore

        store = S3FileStore(files_s3, files_s3_connection or S3Connection())
    else:
        files_dir.mkdir(parents=True, exist_ok=True)
        store = FilesystemStore(files_dir, files_claim)
    cluster = Cluster(kubeconfig)
    cache = JobCache(cluster.own)
    cache.start()
    app = create_app(
        cluster,
        store,
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
