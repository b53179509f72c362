"""The model catalog: which `model` names the API accepts and the FineTuneJob each starts from.

The admin writes it (a YAML file; the chart mounts it from a ConfigMap):

    models:
      llama-3.1-8b-instruct:
        methods: [supervised, dpo]        # of supervised, dpo, reinforcement
        spec:                             # a FineTuneJob spec without its dataset sources
          model: {source: hf://meta-llama/Llama-3.1-8B-Instruct}
          dataset: {chatTemplate: {builtin: llama-3.1}}
          method: {type: lora}
          training: {learningRate: 1.0e-4, microBatchSize: 4}   # learning_rate_multiplier scales it
          distributed: {gpusPerNode: 8}
          storage: {size: 200Gi}

The entry's `training.dpo` and `training.grpo` apply only to `dpo` and `reinforcement` requests.
A request's fields are laid over the entry's spec and the result is validated as any
FineTuneJob is (`kubetune.api.job.parse_job`), so the catalog cannot smuggle in what
`kubectl apply` would refuse.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field

OpenAIMethod = Literal["supervised", "dpo", "reinforcement"]


def _supervised_only() -> list[OpenAIMethod]:
    return ["supervised"]


class CatalogEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    methods: list[OpenAIMethod] = Field(default_factory=_supervised_only, min_length=1)
    spec: dict[str, Any]


class Catalog(BaseModel):
    model_config = ConfigDict(extra="forbid")

    models: dict[str, CatalogEntry] = Field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> Catalog:
        return cls.model_validate(yaml.safe_load(path.read_text()) or {})
