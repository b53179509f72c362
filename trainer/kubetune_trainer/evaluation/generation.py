"""Generating the held-out assistant turns: prompts, batched greedy decoding, sharding, gathering.

Every assistant turn of a held-out conversation that carries tools is a test: its prompt is the
conversation before it, rendered by the chat template with `add_generation_prompt` (exactly the
text a server sends the model), and its reference is the turn's own tool calls (none for a turn
that answers in words). Prompts are decoded greedily in batches, left-padded, and cut at the
template's end-of-turn marker. A prompt the template refuses or a batch that fails to generate
becomes an error record — counted, never raised.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubetune_trainer.data.tool_calls import reference_calls
from kubetune_trainer.data.turns import probe
from kubetune_trainer.runtime.distributed import initialized

BATCH = 8


@dataclass
class Turn:
    """One assistant turn to generate."""

    conversation: int
    """Index of its conversation among the held-out ones."""
    turn: int
    """Index of the assistant message in that conversation."""
    expected: list[dict[str, Any]]
    """The reference's calls ({"name", "arguments"}); empty for an answer in words."""
    prompt: str | None = None
    error: str | None = None
    reply: str | None = None


def carries_tools(chat: dict[str, Any]) -> bool:
    messages = chat.get("messages") or []
    return bool(chat.get("tools")) or any(m.get("tool_calls") for m in messages)


def render_prompt(tokenizer: Any, messages: list[dict[str, Any]], tools: Any) -> str:
    text: str = tokenizer.apply_chat_template(
        messages, tools=tools or None, tokenize=False, add_generation_prompt=True
    )
    return text


def turns_of(
    conversations: list[dict[str, Any]], tokenizer: Any, max_conversations: int | None
) -> list[Turn]:
    """The turns to generate: every assistant turn (after the first message) of the first
    `max_conversations` held-out conversations that carry tools."""
    chats = [c for c in conversations if carries_tools(c)][:max_conversations]
    turns = []
    for index, chat in enumerate(chats):
        messages, tools = chat["messages"], chat.get("tools")
        for at, message in enumerate(messages):
            if message.get("role") != "assistant" or at == 0:
                continue
            turn = Turn(index, at, [])
            try:
                turn.expected = reference_calls(message)
                turn.prompt = render_prompt(tokenizer, messages[:at], tools)
            except Exception as err:  # the template's or the data's; counted
                turn.error = f"prompt: {type(err).__name__}: {err}"
            turns.append(turn)
    return turns


def shard(items: list[Any], rank: int, world: int) -> list[Any]:
    """Every `world`-th item from `rank`: the shards are disjoint and together whole."""
    return items[rank::world]


def end_of_turn(tokenizer: Any) -> str | None:
    """The template's end-of-turn marker (`<|im_end|>`, `<|eot_id|>`, `<end_of_turn>`)."""

    def render(messages: list[dict[str, Any]], tools: Any, generation: bool) -> str:
        text: str = tokenizer.apply_chat_template(
            messages, tools=tools, tokenize=False, add_generation_prompt=generation
        )
        return text

    try:
        marker = probe(render).end
    except Exception:  # no marker: stop at EOS only
        return None
    return (marker or "").strip() or None


def stop_token_ids(tokenizer: Any, marker: str | None) -> list[int]:
    ids = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    if marker:
        found = tokenizer.convert_tokens_to_ids(marker)
        if isinstance(found, int) and found != tokenizer.unk_token_id and found not in ids:
            ids.append(found)
    return ids


def reply_text(decoded: str, tokenizer: Any, marker: str | None) -> str:
    """The generated reply up to the end of the turn, without padding or EOS."""
    if marker and marker in decoded:
        decoded = decoded[: decoded.index(marker)]
    for token in (tokenizer.eos_token, tokenizer.pad_token):
        if token and decoded.endswith(token):
            decoded = decoded.replace(token, "")
    return decoded.strip()


def generate(model: Any, tokenizer: Any, turns: list[Turn], max_new_tokens: int) -> None:
    """Fill in each turn's `reply` (or `error`): greedy, batched, longest prompts first."""
    import torch

    marker = end_of_turn(tokenizer)
    stop = stop_token_ids(tokenizer, marker)
    tokenizer.padding_side = "left"
    todo = sorted((t for t in turns if t.error is None), key=lambda t: -len(t.prompt or ""))
    device = next(model.parameters()).device
    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        try:
            encoded = tokenizer(
                [t.prompt for t in batch],
                return_tensors="pt",
                padding=True,
                add_special_tokens=False,  # the template wrote BOS where it wants one
            ).to(device)
            with torch.inference_mode():
                out = model.generate(
                    **encoded,
                    max_new_tokens=max_new_tokens,
                    do_sample=False,
                    eos_token_id=stop,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = out[:, encoded["input_ids"].shape[1] :]
            for turn, ids in zip(batch, new, strict=True):
                decoded = tokenizer.decode(ids, skip_special_tokens=False)
                turn.reply = reply_text(decoded, tokenizer, marker)
        except Exception as err:  # out of memory, a model error: counted
            for turn in batch:
                turn.error = f"generation: {type(err).__name__}: {err}"


def gather(records: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
    """Every rank's records on rank 0 (None on the others); as is when not distributed."""
    import torch.distributed as dist

    if not initialized():
        return records
    rank, world = dist.get_rank(), dist.get_world_size()
    parts: list[Any] | None = [None] * world if rank == 0 else None
    dist.gather_object(records, parts, dst=0)
    if parts is None:
        return None
    return [record for part in parts for record in (part or [])]
