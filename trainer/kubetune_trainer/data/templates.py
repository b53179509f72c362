"""Built-in chat templates (transformers' `chat_template` Jinja dialect).

Each renders tool definitions into the system turn, assistant tool calls as
`<tool_call>{json}</tool_call>`, and tool results as their own turn. Every template is
prefix-stable — rendering the first k messages gives a prefix of rendering all of them —
which role-based label masking relies on (and checks).
"""

from __future__ import annotations

_TOOL_CALLS = (
    "{%- if message.tool_calls is defined and message.tool_calls -%}"
    "{%- for call in message.tool_calls -%}"
    "<tool_call>{{ call | tojson }}</tool_call>"
    "{%- endfor -%}{%- endif -%}"
)
_TOOLS = (
    "{%- set ns = namespace(tools='') -%}"
    "{%- if tools is defined and tools -%}{%- set ns.tools = '\\n\\nFunctions:\\n' -%}"
    "{%- for tool in tools -%}"
    "{%- set ns.tools = ns.tools ~ (tool | tojson) ~ '\\n' -%}"
    "{%- endfor -%}"
    "{%- endif -%}{%- set tool_text = ns.tools -%}"
)

CHATML = (
    _TOOLS + "{%- if tool_text and (messages | length == 0 or messages[0].role != 'system') -%}"
    "{{ '<|im_start|>system\\n' ~ (tool_text | trim) ~ '<|im_end|>\\n' }}{%- endif -%}"
    "{%- for message in messages -%}"
    "{{ '<|im_start|>' ~ message.role ~ '\\n' ~ message.content }}"
    "{%- if loop.first and message.role == 'system' -%}{{ tool_text }}{%- endif -%}"
    + _TOOL_CALLS
    + "{{ '<|im_end|>\\n' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}"
)

LLAMA3 = (
    _TOOLS + "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{{ '<|start_header_id|>' ~ message.role ~ '<|end_header_id|>\\n\\n' ~ message.content }}"
    "{%- if loop.first and message.role == 'system' -%}{{ tool_text }}{%- endif -%}"
    + _TOOL_CALLS
    + "{{ '<|eot_id|>' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{%- endif -%}"
)

GEMMA = (
    _TOOLS + "{{- bos_token -}}"
    "{%- for message in messages -%}"
    "{%- set role = 'model' if message.role == 'assistant' else message.role -%}"
    "{{ '<start_of_turn>' ~ role ~ '\\n' ~ message.content }}"
    "{%- if loop.first and message.role == 'system' -%}{{ tool_text }}{%- endif -%}"
    + _TOOL_CALLS
    + "{{ '<end_of_turn>\\n' }}{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{ '<start_of_turn>model\\n' }}{%- endif -%}"
)

# Qwen 2/2.5/3 use ChatML turns; tool calls and results follow the same markers.
QWEN = CHATML

BUILTIN_TEMPLATES = {"chatml": CHATML, "llama-3": LLAMA3, "gemma": GEMMA, "qwen": QWEN}
