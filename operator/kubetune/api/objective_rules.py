"""The spec's rules for what is trained on what: one model source, a dataset (or a custom
entrypoint), and each objective (sft, dpo, grpo) with the data formats, settings and rewards it
takes. Part of `rules.RULES`."""

from __future__ import annotations

from kubetune.api.rule import WORLD_SIZE_CEL, Rule
from kubetune_api.inputs_spec import PREFERENCE_FORMATS, PROMPT_FORMATS
from kubetune_api.reward_spec import REWARD_KINDS
from kubetune_api.training_spec import GrpoSpec

_PAIRS = "['" + "', '".join(PREFERENCE_FORMATS) + "']"
_GRPO_DEFAULTS = GrpoSpec()
_ONE_KIND = " + ".join(f"(has(r.{k}) ? 1 : 0)" for k in REWARD_KINDS) + " == 1"


def _formats_of(objective: str, formats: tuple[str, ...], message: str) -> Rule:
    """`objective` trains only on dataset sources of these formats."""
    listed = "['" + "', '".join(formats) + "']"
    return Rule(
        "training.objective",
        f"self.training.objective != '{objective}' || (has(self.dataset) "
        f"&& self.dataset.sources.all(s, s.format in {listed}))",
        message,
        lambda s: (
            s.training.objective != objective
            or (s.dataset is not None and all(src.format in formats for src in s.dataset.sources))
        ),
    )


OBJECTIVE_RULES: tuple[Rule, ...] = (
    Rule(
        "model",
        "has(self.model.source) != has(self.model.fromJob)",
        "set exactly one of model.source (hf://org/name, pvc://claim/path or a path) "
        "or model.fromJob (another FineTuneJob's output)",
        lambda s: (s.model.source is None) != (s.model.fromJob is None),
    ),
    Rule(
        "dataset",
        "has(self.dataset) || has(self.entrypoint)",
        "required: add dataset.sources (only a custom entrypoint may train without one)",
        lambda s: s.dataset is not None or s.entrypoint is not None,
    ),
    Rule(
        "dataset.chatTemplate",
        "!has(self.dataset) || !(has(self.dataset.chatTemplate.builtin) "
        "&& has(self.dataset.chatTemplate.jinja))",
        "set at most one of chatTemplate.builtin and chatTemplate.jinja "
        "(neither uses the tokenizer's own template)",
        lambda s: (
            s.dataset is None
            or not (s.dataset.chatTemplate.builtin and s.dataset.chatTemplate.jinja)
        ),
    ),
    _formats_of(
        "dpo",
        PREFERENCE_FORMATS,
        "objective dpo trains on preference pairs: give every dataset source the format "
        + ", ".join(PREFERENCE_FORMATS),
    ),
    Rule(
        "dataset.sources",
        "self.training.objective == 'dpo' || !has(self.dataset) "
        f"|| self.dataset.sources.all(s, !(s.format in {_PAIRS}))",
        "preference formats hold chosen/rejected pairs: set training.objective: dpo to train "
        "on them",
        lambda s: (
            s.training.objective == "dpo"
            or s.dataset is None
            or all(src.format not in PREFERENCE_FORMATS for src in s.dataset.sources)
        ),
    ),
    Rule(
        "training.dpo",
        "!has(self.training.dpo) || self.training.objective == 'dpo'",
        "DPO settings need training.objective: dpo (or remove training.dpo)",
        lambda s: s.training.dpo is None or s.training.objective == "dpo",
    ),
    Rule(
        "training.dpo.labelSmoothing",
        "!has(self.training.dpo) || self.training.dpo.lossType != 'exo_pair' "
        "|| self.training.dpo.labelSmoothing > 0.0",
        "lossType exo_pair needs labelSmoothing above 0 (EXO's epsilon; its paper uses 1e-3)",
        lambda s: (
            s.training.dpo is None
            or s.training.dpo.lossType != "exo_pair"
            or s.training.dpo.labelSmoothing > 0
        ),
    ),
    Rule(
        "training.dpo.labelSmoothing",
        "!has(self.training.dpo) || self.training.dpo.labelSmoothing < 0.5",
        "must be below 0.5: it is the probability that a preference label is flipped "
        "(robust DPO divides by 1 − 2 × labelSmoothing)",
        lambda s: s.training.dpo is None or s.training.dpo.labelSmoothing < 0.5,
    ),
    _formats_of(
        "grpo",
        PROMPT_FORMATS,
        "objective grpo generates from prompts: give every dataset source the format "
        + ", ".join(PROMPT_FORMATS)
        + " (conversations are cut before their last assistant turn)",
    ),
    Rule(
        "dataset.sources",
        "self.training.objective == 'grpo' || !has(self.dataset) "
        "|| self.dataset.sources.all(s, s.format != 'prompts')",
        "format prompts holds no completions to learn from: set training.objective: grpo "
        "(with spec.rewards) to train on it",
        lambda s: (
            s.training.objective == "grpo"
            or s.dataset is None
            or all(src.format != "prompts" for src in s.dataset.sources)
        ),
    ),
    Rule(
        "rewards",
        "self.training.objective != 'grpo' || (has(self.rewards) && self.rewards.size() > 0)",
        "objective grpo learns from rewards: add at least one, e.g. rewards: [{toolCall: {}}]",
        lambda s: s.training.objective != "grpo" or bool(s.rewards),
    ),
    Rule(
        "rewards",
        "!has(self.rewards) || self.rewards.size() == 0 || self.training.objective == 'grpo'",
        "rewards are what objective grpo learns from: set training.objective: grpo "
        "(or remove rewards)",
        lambda s: not s.rewards or s.training.objective == "grpo",
    ),
    Rule(
        "rewards",
        f"!has(self.rewards) || self.rewards.all(r, {_ONE_KIND})",
        "each reward sets exactly one grader: " + ", ".join(REWARD_KINDS),
        lambda s: all(sum(getattr(r, k) is not None for k in REWARD_KINDS) == 1 for r in s.rewards),
    ),
    Rule(
        "rewards",
        "!has(self.rewards) || self.rewards.all(r, !has(r.name) "
        "|| self.rewards.exists_one(o, has(o.name) && o.name == r.name))",
        "name each reward once (the names label its metrics)",
        lambda s: all(
            r.name is None or [o.name for o in s.rewards].count(r.name) == 1 for r in s.rewards
        ),
    ),
    Rule(
        "rewards",
        "!has(self.rewards) || self.rewards.all(r, !has(r.stringCheck) "
        "|| has(r.stringCheck.expected) != has(r.stringCheck.referenceField))",
        "a stringCheck sets exactly one of expected (a fixed string) and referenceField "
        "(the row's own)",
        lambda s: all(
            r.stringCheck is None
            or (r.stringCheck.expected is None) != (r.stringCheck.referenceField is None)
            for r in s.rewards
        ),
    ),
    Rule(
        "training.grpo",
        "!has(self.training.grpo) || self.training.objective == 'grpo'",
        "GRPO settings need training.objective: grpo (or remove training.grpo)",
        lambda s: s.training.grpo is None or s.training.objective == "grpo",
    ),
    Rule(
        "training.grpo.maxCompletionLength",
        "self.training.objective != 'grpo' || (has(self.training.grpo) ? "
        "self.training.grpo.maxCompletionLength : "
        f"{_GRPO_DEFAULTS.maxCompletionLength}) < self.training.maxLength",
        "must be below training.maxLength, which bounds prompt + completion "
        f"(maxCompletionLength defaults to {_GRPO_DEFAULTS.maxCompletionLength})",
        lambda s: (
            s.training.objective != "grpo"
            or (s.training.grpo or _GRPO_DEFAULTS).maxCompletionLength < s.training.maxLength
        ),
    ),
    Rule(
        "training.grpo.numGenerations",
        "self.training.objective != 'grpo' || (has(self.training.globalBatchSize) ? "
        "self.training.globalBatchSize : self.training.microBatchSize * "
        "(has(self.training.gradientAccumulationSteps) ? self.training.gradientAccumulationSteps"
        f" : 1) * {WORLD_SIZE_CEL}) % (has(self.training.grpo) ? "
        f"self.training.grpo.numGenerations : {_GRPO_DEFAULTS.numGenerations}) == 0",
        "the completions per optimizer step (microBatchSize × accumulation × world size) must "
        "be a multiple of numGenerations: every prompt's group is generated whole "
        f"(numGenerations defaults to {_GRPO_DEFAULTS.numGenerations})",
        lambda s: (
            s.training.objective != "grpo"
            or s.effective_batch_size % (s.training.grpo or _GRPO_DEFAULTS).numGenerations == 0
        ),
        lambda s: (
            f"{s.effective_batch_size} completions a step, "
            f"numGenerations {(s.training.grpo or _GRPO_DEFAULTS).numGenerations}"
        ),
    ),
    Rule(
        "method.lora.targetModules",
        "self.training.objective != 'grpo' || !has(self.method.lora) "
        "|| !('lm_head' in self.method.lora.targetModules)",
        "objective grpo cannot adapt lm_head (TRL computes the log-probabilities from its "
        "weight directly, so an adapter there would never train): remove lm_head",
        lambda s: (
            s.training.objective != "grpo"
            or s.method.lora is None
            or "lm_head" not in s.method.lora.targetModules
        ),
    ),
    Rule(
        "training.evalSteps",
        "self.training.objective != 'grpo' || !has(self.training.evalSteps)",
        "objective grpo measures no held-out loss while training (the held-out tool-call "
        "scoring runs after the export): remove evalSteps",
        lambda s: s.training.objective != "grpo" or s.training.evalSteps is None,
    ),
    Rule(
        "entrypoint",
        "self.training.objective == 'sft' || !has(self.entrypoint)",
        "a custom entrypoint runs its own training; objectives dpo and grpo are the built-in "
        "trainer's: remove one of them",
        lambda s: s.training.objective == "sft" or s.entrypoint is None,
    ),
)
