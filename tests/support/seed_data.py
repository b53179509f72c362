"""Small datasets in the seed workloads' formats (glaive, xlam, messages), written by hand."""

from __future__ import annotations

import json
import random

CITIES = ["Oslo", "Lima", "Pune", "Kyiv", "Doha", "Nice", "Bern", "Riga", "Cork", "Graz"]
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def glaive(n: int = 240, seed: int = 0) -> bytes:
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        city, temp = rng.choice(CITIES), rng.randint(-20, 35)
        args = json.dumps({"city": city})
        rows.append(
            {
                "system": "SYSTEM: You are a helpful assistant with access to the following "
                f"functions. Use them if required - {json.dumps(WEATHER_TOOL)}",
                "chat": f"USER: Weather in {city}? ASSISTANT: <functioncall> "
                f'{{"name": "get_weather", "arguments": \'{args}\'}} <|endoftext|> '
                f'FUNCTION RESPONSE: {{"temp": {temp}}} ASSISTANT: It is {temp} degrees in '
                f"{city}. <|endoftext|>",
            }
        )
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def xlam(n: int = 240, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        city = rng.choice(CITIES)
        rows.append(
            {
                "id": i,
                "query": f"What's the weather in {city}?",
                "tools": json.dumps([WEATHER_TOOL]),
                "answers": json.dumps([{"name": "get_weather", "arguments": {"city": city}}]),
            }
        )
    return "".join(json.dumps(r) + "\n" for r in rows).encode()
