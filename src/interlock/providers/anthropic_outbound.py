"""Request translation for the Anthropic adapter: OpenAI-shaped requests out to the Anthropic Messages
API. Answers come back through :mod:`interlock.providers.anthropic_outbound_reply`.

Where the two APIs differ, the choice is made once, here:

- ``response_format`` ``json_schema`` becomes ``output_config.format`` (Anthropic's structured
  outputs, which enforce the schema); ``json_object`` carries no schema to enforce, so it becomes a
  closing system instruction asking for one JSON object.
- ``temperature`` is clamped to Anthropic's 0..1 (OpenAI allows up to 2): a request that works with
  every other backend should not fail only because this one has a narrower range.
- Knobs Anthropic has no equivalent for (``frequency_penalty``, ``presence_penalty``, ``logit_bias``,
  ``seed``, ``logprobs``, ``reasoning_effort``, ``service_tier`` …) are dropped, not rejected.
- System and developer messages, wherever they stand, become the top-level ``system`` blocks in order.
- A text part's ``prompt_cache_breakpoint`` (or a literal ``cache_control``) becomes ``cache_control``.
"""

from __future__ import annotations

from typing import Any

from interlock.core.errors import InvalidRequest
from interlock.providers._anthropic_common import copy_top_k, is_int, json_object, number, required_messages

__all__ = ["openai_request_to_anthropic"]

_JSON_OBJECT_INSTRUCTION = "Respond with a single valid JSON object and nothing else."

_TOOL_CHOICES = {"auto": "auto", "required": "any", "none": "none"}


def openai_request_to_anthropic(body: dict[str, Any], *, default_max_tokens: int) -> dict[str, Any]:
    """Translate an OpenAI chat request into an Anthropic Messages request; raise ``InvalidRequest``
    for what Anthropic cannot serve or what is malformed."""
    n = body.get("n")
    if isinstance(n, int) and n > 1:
        raise InvalidRequest("n > 1 is not supported by Anthropic deployments", param="n")
    system, turns = _convert_messages(required_messages(body))
    out: dict[str, Any] = {
        "model": body.get("model"),
        "max_tokens": _max_tokens(body, default_max_tokens),
        "messages": turns,
    }
    fmt = body.get("response_format")
    if fmt is not None:
        _apply_response_format(fmt, out, system)
    if system:
        plain = len(system) == 1 and set(system[0]) == {"type", "text"}
        out["system"] = system[0]["text"] if plain else system
    _apply_sampling(body, out)
    _apply_tools(body, out)
    if body.get("stream") is True:
        out["stream"] = True
    return out


def _max_tokens(body: dict[str, Any], default: int) -> int:
    for key in ("max_completion_tokens", "max_tokens"):
        value = body.get(key)
        if value is None:
            continue
        if not is_int(value) or value < 1:
            raise InvalidRequest(f"'{key}' must be a positive integer", param=key)
        return int(value)
    return default


def _apply_sampling(body: dict[str, Any], out: dict[str, Any]) -> None:
    temperature = body.get("temperature")
    if temperature is not None:
        out["temperature"] = min(max(float(number(temperature, "temperature")), 0.0), 1.0)
    if body.get("top_p") is not None:
        out["top_p"] = number(body["top_p"], "top_p")
    copy_top_k(body, out)
    stop = body.get("stop")
    if isinstance(stop, str):
        out["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(s, str) for s in stop):
        if stop:
            out["stop_sequences"] = stop
    elif stop is not None:
        raise InvalidRequest("'stop' must be a string or a list of strings", param="stop")
    user = body.get("user")
    if isinstance(user, str) and user:
        out["metadata"] = {"user_id": user}


def _apply_response_format(fmt: Any, out: dict[str, Any], system: list[dict[str, Any]]) -> None:
    kind = fmt.get("type") if isinstance(fmt, dict) else None
    if kind == "json_schema":
        spec = fmt.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise InvalidRequest(
                "response_format.json_schema.schema must be an object", param="response_format"
            )
        out["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    elif kind == "json_object":
        system.append({"type": "text", "text": _JSON_OBJECT_INSTRUCTION})
    elif kind != "text":
        raise InvalidRequest(
            "response_format.type must be 'text', 'json_object' or 'json_schema'", param="response_format"
        )


def _apply_tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools")
    if tools is None or tools == []:
        # Anthropic rejects tool_choice without tools; OpenAI clients send it freely.
        return
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be a list", param="tools")
    out["tools"] = [_tool(tool, i) for i, tool in enumerate(tools)]
    choice = body.get("tool_choice")
    parallel = body.get("parallel_tool_calls")
    if choice is None and parallel is not False:
        return
    result = _tool_choice(choice if choice is not None else "auto")
    if parallel is False and result["type"] != "none":
        result["disable_parallel_tool_use"] = True
    out["tool_choice"] = result


def _tool(tool: Any, i: int) -> dict[str, Any]:
    fn = tool.get("function") if isinstance(tool, dict) else None
    if not isinstance(fn, dict) or tool.get("type", "function") != "function":
        raise InvalidRequest(
            f"tools[{i}] must be a function tool; Anthropic deployments serve no other kind", param="tools"
        )
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"tools[{i}].function.name must be a non-empty string", param="tools")
    params = fn.get("parameters")
    entry: dict[str, Any] = {
        "name": name,
        "input_schema": params if isinstance(params, dict) else {"type": "object", "properties": {}},
    }
    if isinstance(fn.get("description"), str):
        entry["description"] = fn["description"]
    if fn.get("strict") is True:
        entry["strict"] = True
    return entry


def _tool_choice(choice: Any) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _TOOL_CHOICES:
        return {"type": _TOOL_CHOICES[choice]}
    fn = choice.get("function") if isinstance(choice, dict) else None
    if isinstance(fn, dict) and isinstance(fn.get("name"), str):
        return {"type": "tool", "name": fn["name"]}
    raise InvalidRequest(
        "tool_choice must be 'auto', 'required', 'none' or {'type': 'function', 'function': {'name': …}}",
        param="tool_choice",
    )


def _convert_messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    system: list[dict[str, Any]] = []
    turns: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where} must be an object", param="messages")
        role = message.get("role")
        if role in ("system", "developer"):
            system.extend(_system_blocks(message.get("content"), where))
        elif role == "user":
            _append(turns, "user", _user_content(message.get("content"), where))
        elif role == "assistant":
            content = _assistant_content(message, where)
            if content:
                _append(turns, "assistant", content)
        elif role == "tool":
            _append(turns, "user", [_tool_result(message, where)])
        else:
            raise InvalidRequest(
                f"{where}.role '{role}' is not supported by Anthropic deployments", param="messages"
            )
    return system, turns


def _append(turns: list[dict[str, Any]], role: str, content: str | list[dict[str, Any]]) -> None:
    """Add a turn, merging it into the previous one of the same role: Anthropic wants turns to
    alternate, and a tool message's result must sit in the user turn right after the tool call."""
    if turns and turns[-1]["role"] == role:
        turns[-1]["content"] = _as_blocks(turns[-1]["content"]) + _as_blocks(content)
    else:
        turns.append({"role": role, "content": content})


def _as_blocks(content: str | list[dict[str, Any]]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    return content


def _system_blocks(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        # Anthropic rejects empty text blocks; an empty system message says nothing anyway.
        return [{"type": "text", "text": content}] if content else []
    return [b for b in _parts(content, where, allowed=("text",)) if b["text"]]


def _user_content(content: Any, where: str) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    return _parts(content, where, allowed=("text", "image_url", "file"))


def _parts(content: Any, where: str, *, allowed: tuple[str, ...]) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        raise InvalidRequest(f"{where}.content must be a string or a list of content parts", param="messages")
    blocks = []
    for j, part in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind not in allowed:
            raise InvalidRequest(
                f"{at}: content part type '{kind}' is not supported here by Anthropic deployments",
                param="messages",
            )
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise InvalidRequest(f"{at}.text must be a string", param="messages")
            block: dict[str, Any] = {"type": "text", "text": part["text"]}
        elif kind == "image_url":
            block = _image_block(part.get("image_url"), at)
        else:
            block = _document_block(part.get("file"), at)
        if isinstance(part.get("cache_control"), dict):
            block["cache_control"] = part["cache_control"]
        elif isinstance(part.get("prompt_cache_breakpoint"), dict):
            block["cache_control"] = {"type": "ephemeral"}
        blocks.append(block)
    return blocks


def _image_block(image: Any, at: str) -> dict[str, Any]:
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise InvalidRequest(f"{at}.image_url.url must be a non-empty string", param="messages")
    if url.startswith("data:"):
        media_type, data = _split_data_url(url, at)
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _document_block(file: Any, at: str) -> dict[str, Any]:
    data_url = file.get("file_data") if isinstance(file, dict) else None
    if not isinstance(data_url, str) or not data_url.startswith("data:"):
        raise InvalidRequest(
            f"{at}: only files inlined as a file_data data URL reach Anthropic deployments",
            param="messages",
        )
    media_type, data = _split_data_url(data_url, at)
    return {"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}}


def _split_data_url(url: str, at: str) -> tuple[str, str]:
    header, sep, data = url.partition(",")
    media_type, _, encoding = header[5:].partition(";")
    if not sep or encoding != "base64" or not media_type or not data:
        raise InvalidRequest(f"{at}: a data URL must look like data:<type>;base64,<data>", param="messages")
    return media_type, data


def _assistant_content(message: dict[str, Any], where: str) -> str | list[dict[str, Any]]:
    content = message.get("content")
    calls = message.get("tool_calls")
    if message.get("function_call") is not None:
        raise InvalidRequest(f"{where}.function_call is not supported; use tool_calls", param="messages")
    if isinstance(content, str) and not calls:
        return content
    blocks: list[dict[str, Any]] = []
    if isinstance(content, str):
        blocks = _as_blocks(content)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            text = part.get("text", part.get("refusal")) if isinstance(part, dict) else None
            if not isinstance(text, str):
                raise InvalidRequest(f"{where}.content[{j}] must be a text or refusal part", param="messages")
            blocks.extend(_as_blocks(text))
    elif content is not None:
        raise InvalidRequest(f"{where}.content must be a string, a list or null", param="messages")
    if calls is not None:
        if not isinstance(calls, list):
            raise InvalidRequest(f"{where}.tool_calls must be a list", param="messages")
        blocks.extend(_tool_use(call, f"{where}.tool_calls[{k}]") for k, call in enumerate(calls))
    return blocks


def _tool_use(call: Any, at: str) -> dict[str, Any]:
    fn = call.get("function") if isinstance(call, dict) else None
    if not isinstance(fn, dict) or call.get("type", "function") != "function":
        raise InvalidRequest(f"{at} must be a function tool call", param="messages")
    call_id, name = call.get("id"), fn.get("name")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise InvalidRequest(f"{at} needs a non-empty id and function.name", param="messages")
    return {"type": "tool_use", "id": call_id, "name": name, "input": _arguments(fn.get("arguments"), at)}


def _arguments(arguments: Any, at: str) -> dict[str, Any]:
    if arguments is None or arguments == "":
        return {}
    if isinstance(arguments, dict):
        return arguments
    parsed = json_object(arguments) if isinstance(arguments, str) else None
    if parsed is None:
        raise InvalidRequest(
            f"{at}.function.arguments must be a JSON object encoded as a string", param="messages"
        )
    return parsed


def _tool_result(message: dict[str, Any], where: str) -> dict[str, Any]:
    call_id = message.get("tool_call_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{where}.tool_call_id must be a non-empty string", param="messages")
    content = message.get("content")
    if content is None:
        content = ""
    elif not isinstance(content, str):
        content = _parts(content, where, allowed=("text",))
    return {"type": "tool_result", "tool_use_id": call_id, "content": content}
