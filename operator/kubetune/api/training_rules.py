"""The spec's rules for how the model is trained and evaluated: the method (full, LoRA, QLoRA)
and the output formats it can produce, the batch size, and the held-out data that evaluation
needs. Part of `rules.RULES`."""

from __future__ import annotations

from kubetune.api.rule import WORLD_SIZE_CEL, Rule
from kubetune.api.spec import FineTuneJobSpec


def _batch_detail(spec: FineTuneJobSpec) -> str:
    micro, world = spec.training.microBatchSize, spec.world_size
    step, wanted = micro * world, spec.training.globalBatchSize or 0
    below, above = max(1, wanted // step) * step, (wanted // step + 1) * step
    options = f"{below} or {above}" if below != above and below < wanted else f"{above}"
    return f"got {wanted}; {micro} × {world} = {step}, try {options}"


TRAINING_RULES: tuple[Rule, ...] = (
    Rule(
        "method.quantization",
        "self.method.type != 'qlora' || has(self.method.quantization)",
        "required when method.type is qlora: e.g. {bits: 4, quantType: nf4, doubleQuant: true}",
        lambda s: s.method.type != "qlora" or s.method.quantization is not None,
    ),
    Rule(
        "method.quantization",
        "self.method.type != 'lora' || !has(self.method.quantization)",
        "a quantized base needs method.type qlora; remove quantization for plain LoRA",
        lambda s: s.method.type != "lora" or s.method.quantization is None,
    ),
    Rule(
        "method",
        "self.method.type != 'full' || (!has(self.method.lora) && !has(self.method.quantization))",
        "full fine-tuning takes neither lora nor quantization; use method.type lora or qlora",
        lambda s: (
            s.method.type != "full" or (s.method.lora is None and s.method.quantization is None)
        ),
    ),
    Rule(
        "output.formats",
        "self.method.type != 'full' || !has(self.output.formats) "
        "|| !('adapter' in self.output.formats)",
        "full fine-tuning produces no adapter: use formats [merged]",
        lambda s: (
            s.method.type != "full" or s.output.formats is None or "adapter" not in s.output.formats
        ),
    ),
    Rule(
        "output.formats",
        "!has(self.output.formats) || !('gguf' in self.output.formats) "
        "|| 'merged' in self.output.formats",
        "gguf is converted from the merged model: add merged to output.formats "
        "(e.g. [adapter, merged, gguf])",
        lambda s: (
            s.output.formats is None
            or "gguf" not in s.output.formats
            or "merged" in s.output.formats
        ),
    ),
    Rule(
        "model.tokenizer",
        "!has(self.model.tokenizer) || "
        "(has(self.model.source) && self.model.source == 'builtin://tiny-llama')",
        "only builtin://tiny-llama takes a tokenizer (other models bring their own): remove "
        "model.tokenizer",
        lambda s: s.model.tokenizer is None or s.model.source == "builtin://tiny-llama",
    ),
    Rule(
        "output.formats",
        "!has(self.output.formats) || !('gguf' in self.output.formats) "
        "|| !has(self.model.source) || self.model.source != 'builtin://tiny-llama' "
        "|| has(self.model.tokenizer)",
        "builtin://tiny-llama's own tokenizer is trained on the spot, and llama.cpp's converter "
        "only takes BPE tokenizers it knows: set model.tokenizer (llama-bpe or qwen2) or remove "
        "gguf from output.formats",
        lambda s: (
            s.output.formats is None
            or "gguf" not in s.output.formats
            or s.model.source != "builtin://tiny-llama"
            or s.model.tokenizer is not None
        ),
    ),
    Rule(
        "output.gguf",
        "!has(self.output.gguf) || (has(self.output.formats) && 'gguf' in self.output.formats)",
        "output.gguf is set but output.formats lacks gguf: add gguf to formats "
        "or remove output.gguf",
        lambda s: s.output.gguf is None or "gguf" in (s.output.formats or []),
    ),
    Rule(
        "training.globalBatchSize",
        "!(has(self.training.globalBatchSize) && has(self.training.gradientAccumulationSteps))",
        "set globalBatchSize or gradientAccumulationSteps, not both (one derives the other)",
        lambda s: (
            s.training.globalBatchSize is None or s.training.gradientAccumulationSteps is None
        ),
    ),
    Rule(
        "training.globalBatchSize",
        f"!has(self.training.globalBatchSize) || self.training.globalBatchSize % "
        f"(self.training.microBatchSize * {WORLD_SIZE_CEL}) == 0",
        "must be a multiple of microBatchSize × world size (nodes × processes per node)",
        lambda s: (
            s.training.globalBatchSize is None
            or s.training.globalBatchSize % (s.training.microBatchSize * s.world_size) == 0
        ),
        lambda s: _batch_detail(s),
    ),
    Rule(
        "training.evalSteps",
        "!has(self.training.evalSteps) || (has(self.dataset) && "
        "(self.dataset.evalFraction > 0.0 || has(self.dataset.validation)))",
        "evaluation needs held-out data: set dataset.evalFraction above 0 or "
        "dataset.validation, or drop evalSteps",
        lambda s: (
            s.training.evalSteps is None or (s.dataset is not None and s.dataset.has_held_out)
        ),
    ),
    Rule(
        "dataset.validation",
        "!has(self.dataset) || !has(self.dataset.validation) || self.dataset.evalFraction == 0.0",
        "set dataset.validation or dataset.evalFraction, not both (one is the held-out data)",
        lambda s: s.dataset is None or s.dataset.validation is None or s.dataset.evalFraction == 0,
    ),
    Rule(
        "evaluation.toolCalls",
        "!has(self.evaluation.toolCalls) || !self.evaluation.toolCalls || (has(self.dataset) && "
        "(self.dataset.evalFraction > 0.0 || has(self.dataset.validation)))",
        "tool-call scoring needs held-out conversations: set dataset.evalFraction above 0 or "
        "dataset.validation",
        lambda s: not s.evaluation.toolCalls or (s.dataset is not None and s.dataset.has_held_out),
    ),
    Rule(
        "evaluation.baseline",
        "!self.evaluation.baseline || (has(self.dataset) && "
        "(self.dataset.evalFraction > 0.0 || has(self.dataset.validation)))",
        "a baseline needs held-out conversations: set dataset.evalFraction above 0 or "
        "dataset.validation",
        lambda s: not s.evaluation.baseline or (s.dataset is not None and s.dataset.has_held_out),
    ),
)
