"""Training: the shared `TrainingArguments` and tracking (`arguments`), the model loader
(`modeling`: full, LoRA, QLoRA), the DeepSpeed/FSDP strategy, TRL's DPO and GRPO trainers on
top (`dpo`, `grpo`, with the GRPO `rewards`), and the callbacks that report progress."""
