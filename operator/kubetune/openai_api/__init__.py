"""`kubetune api`: OpenAI's fine-tuning API (files, fine-tuning jobs, events, checkpoints,
models) served over FineTuneJobs, every request authenticated and authorized by Kubernetes.

Pure modules (no cluster client): `errors`, `jsonl`, `catalog`, `jobs`, `views`, `files`.
The I/O: `kube` (token and access reviews; writes with the caller's own token), `cache` (the
watch cache that reads are served from), `app` (the HTTP routes) and `main` (uvicorn).
See docs/openai-api.md.
"""
