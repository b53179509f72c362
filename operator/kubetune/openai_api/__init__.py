"""`kubetune api`: OpenAI's fine-tuning API (files, fine-tuning jobs, events, checkpoints,
models) served over FineTuneJobs, every request authenticated and authorized by Kubernetes.

Pure modules (no cluster client): `errors`, `jsonl`, `catalog`, `jobs`, `views`, `files`.
The I/O: `kube` (the API server, with the caller's own token) and `app` (the HTTP routes).
See docs/openai-api.md.
"""
