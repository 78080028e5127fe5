"""Request translation for the Anthropic front door: Anthropic Messages requests from clients into the
gateway's OpenAI shape. Replies travel back through :mod:`interlock.providers.anthropic_inbound_reply`.

Where the two APIs differ, the choice is made once, here:

- ``thinking`` is accepted and dropped: the OpenAI shape has no portable way to ask for it, and a
  thinking block cannot be made up on the way back because Anthropic clients check its signature.
- A ``tool_result`` with ``is_error`` becomes a tool message whose text starts with ``Error:``; OpenAI
  tool messages have no error flag, and the model should still know the call failed. Images inside a
  tool result move to a user message right after the tool messages, the only place OpenAI allows them.
- ``cache_control`` on text, image and document blocks becomes OpenAI's ``prompt_cache_breakpoint``
  (without the TTL); on tools and assistant text it is dropped.
- ``output_config.format`` (structured outputs) becomes ``response_format`` ``json_schema``.
- Server tools (web search, code execution …) cannot run on an arbitrary backend: rejected.
"""

from __future__ import annotations

from typing import Any

import orjson

from interlock.core.errors import InvalidRequest
from interlock.providers._anthropic_common import copy_top_k, is_int, number, required_messages

__all__ = ["anthropic_request_to_openai"]

_TOOL_CHOICES = {"auto": "auto", "any": "required", "none": "none"}


def anthropic_request_to_openai(body: Any) -> dict[str, Any]:
    """Validate an Anthropic Messages request and translate it into an OpenAI chat request.

    Raises ``InvalidRequest`` naming the offending field for anything malformed."""
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("'model' is required and must be a non-empty string", param="model")
    max_tokens = body.get("max_tokens")
    if not is_int(max_tokens) or max_tokens < 1:
        raise InvalidRequest("'max_tokens' is required and must be a positive integer", param="max_tokens")
    messages = required_messages(body)
    out: dict[str, Any] = {
        "model": model,
        "messages": _system(body.get("system")) + _messages(messages),
        "max_tokens": max_tokens,
    }
    _apply_options(body, out)
    _apply_tools(body, out)
    return out


def _apply_options(body: dict[str, Any], out: dict[str, Any]) -> None:
    for name in ("temperature", "top_p"):
        value = body.get(name)
        if value is not None:
            out[name] = number(value, name)
    copy_top_k(body, out)
    stop = body.get("stop_sequences")
    if stop is not None:
        if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
            raise InvalidRequest("'stop_sequences' must be a list of strings", param="stop_sequences")
        if stop:
            out["stop"] = stop
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    if stream:
        # message_delta needs the token counts, which OpenAI streams only send when asked.
        out["stream"] = True
        out["stream_options"] = {"include_usage": True}
    metadata = body.get("metadata")
    if metadata is not None and not isinstance(metadata, dict):
        raise InvalidRequest("'metadata' must be an object", param="metadata")
    user_id = metadata.get("user_id") if metadata else None
    if user_id is not None and not isinstance(user_id, str):
        raise InvalidRequest("'metadata.user_id' must be a string", param="metadata.user_id")
    if user_id:
        out["user"] = user_id
    _apply_output_config(body.get("output_config"), out)


def _apply_output_config(config: Any, out: dict[str, Any]) -> None:
    if config is not None and not isinstance(config, dict):
        raise InvalidRequest("'output_config' must be an object", param="output_config")
    fmt = config.get("format") if config else None
    if fmt is not None:
        if (
            not isinstance(fmt, dict)
            or fmt.get("type") != "json_schema"
            or not isinstance(fmt.get("schema"), dict)
        ):
            raise InvalidRequest(
                "'output_config.format' must be {'type': 'json_schema', 'schema': {…}}",
                param="output_config.format",
            )
        spec = {"name": "response", "schema": fmt["schema"], "strict": True}
        out["response_format"] = {"type": "json_schema", "json_schema": spec}


def _apply_tools(body: dict[str, Any], out: dict[str, Any]) -> None:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    if choice is not None and (
        not isinstance(choice, dict) or choice.get("type") not in (*_TOOL_CHOICES, "tool")
    ):
        raise InvalidRequest(
            "'tool_choice.type' must be 'auto', 'any', 'tool' or 'none'", param="tool_choice"
        )
    if tools is None or tools == []:
        return  # OpenAI rejects tool_choice and parallel_tool_calls without tools
    if not isinstance(tools, list):
        raise InvalidRequest("'tools' must be a list", param="tools")
    out["tools"] = [_tool(tool, f"tools.{i}") for i, tool in enumerate(tools)]
    if choice is None:
        return
    if choice["type"] == "tool":
        name = choice.get("name")
        if not isinstance(name, str) or not name:
            raise InvalidRequest(
                "'tool_choice.name' is required when type is 'tool'", param="tool_choice.name"
            )
        out["tool_choice"] = {"type": "function", "function": {"name": name}}
    else:
        out["tool_choice"] = _TOOL_CHOICES[choice["type"]]
    if choice.get("disable_parallel_tool_use") is True:
        out["parallel_tool_calls"] = False


def _tool(tool: Any, at: str) -> dict[str, Any]:
    if not isinstance(tool, dict):
        raise InvalidRequest(f"{at} must be an object", param=at)
    if tool.get("type") not in (None, "custom"):
        raise InvalidRequest(
            f"{at}: server tool '{tool.get('type')}' is not available through this gateway", param=at
        )
    name, schema, description = tool.get("name"), tool.get("input_schema"), tool.get("description")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(f"{at}.name must be a non-empty string", param=f"{at}.name")
    if not isinstance(schema, dict):
        raise InvalidRequest(f"{at}.input_schema must be an object", param=f"{at}.input_schema")
    function: dict[str, Any] = {"name": name, "parameters": schema}
    if description is not None:
        if not isinstance(description, str):
            raise InvalidRequest(f"{at}.description must be a string", param=f"{at}.description")
        function["description"] = description
    if tool.get("strict") is True:
        function["strict"] = True
    return {"type": "function", "function": function}


def _system(system: Any) -> list[dict[str, Any]]:
    if system is None or system == "":
        return []
    if isinstance(system, str):
        return [{"role": "system", "content": system}]
    parts = [_text_part(b, f"system.{i}") for i, b in enumerate(_blocks(system, "system"))]
    if not parts:
        return []
    if len(parts) == 1 and len(parts[0]) == 2:
        return [{"role": "system", "content": parts[0]["text"]}]
    # One system message, not several: many chat templates accept only one, and only first.
    return [{"role": "system", "content": parts}]


def _messages(messages: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for i, message in enumerate(messages):
        at = f"messages.{i}"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{at} must be an object", param=at)
        role, content = message.get("role"), message.get("content")
        if role == "user":
            out.extend(_user_message(content, at))
        elif role == "assistant":
            out.append(_assistant_message(content, at))
        else:
            raise InvalidRequest(f"{at}.role must be 'user' or 'assistant'", param=f"{at}.role")
    return out


def _user_message(content: Any, at: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"role": "user", "content": content}]
    blocks = _blocks(content, f"{at}.content")
    if not blocks:
        raise InvalidRequest(f"{at}.content must not be empty", param=f"{at}.content")
    tool_messages: list[dict[str, Any]] = []
    moved: list[dict[str, Any]] = []  # images out of tool results
    parts: list[dict[str, Any]] = []
    for j, block in enumerate(blocks):
        where = f"{at}.content.{j}"
        if block["type"] == "tool_result":
            message, images = _tool_result(block, where)
            tool_messages.append(message)
            moved.extend(images)
        else:
            parts.append(_user_part(block, where))
    if moved or parts:
        tool_messages.append({"role": "user", "content": moved + parts})
    return tool_messages


def _user_part(block: dict[str, Any], at: str) -> dict[str, Any]:
    kind = block["type"]
    if kind == "text":
        return _text_part(block, at)
    if kind == "image":
        return _image_part(block, at)
    if kind == "document":
        return _document_part(block, at)
    if kind in ("tool_use", "thinking", "redacted_thinking"):
        raise InvalidRequest(f"{at}: '{kind}' blocks belong in assistant messages", param=f"{at}.type")
    raise InvalidRequest(f"{at}.type '{kind}' is not a supported content block", param=f"{at}.type")


def _text_part(block: Any, at: str) -> dict[str, Any]:
    if not isinstance(block, dict) or block.get("type") != "text" or not isinstance(block.get("text"), str):
        raise InvalidRequest(f"{at} must be a text block with a string 'text'", param=at)
    return _with_breakpoint({"type": "text", "text": block["text"]}, block)


def _image_part(block: dict[str, Any], at: str) -> dict[str, Any]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        url = _data_url(source, at)
    elif kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise InvalidRequest(f"{at}.source must be a base64 or url image source", param=f"{at}.source")
    return _with_breakpoint({"type": "image_url", "image_url": {"url": url}}, block)


def _document_part(block: dict[str, Any], at: str) -> dict[str, Any]:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "text" and isinstance(source, dict) and isinstance(source.get("data"), str):
        return _with_breakpoint({"type": "text", "text": source["data"]}, block)
    if kind != "base64" or not isinstance(source, dict):
        raise InvalidRequest(f"{at}.source must be a base64 or text document source", param=f"{at}.source")
    title = block.get("title")
    file = {
        "file_data": _data_url(source, at),
        "filename": title if isinstance(title, str) else "document.pdf",
    }
    return _with_breakpoint({"type": "file", "file": file}, block)


def _data_url(source: dict[str, Any], at: str) -> str:
    media_type, data = source.get("media_type"), source.get("data")
    if not isinstance(media_type, str) or not media_type or not isinstance(data, str) or not data:
        raise InvalidRequest(f"{at}.source needs a string media_type and data", param=f"{at}.source")
    return f"data:{media_type};base64,{data}"


def _with_breakpoint(part: dict[str, Any], block: dict[str, Any]) -> dict[str, Any]:
    if isinstance(block.get("cache_control"), dict):
        part["prompt_cache_breakpoint"] = {"mode": "explicit"}
    return part


def _tool_result(block: dict[str, Any], at: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    call_id = block.get("tool_use_id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"{at}.tool_use_id must be a non-empty string", param=f"{at}.tool_use_id")
    is_error = block.get("is_error")
    if is_error is not None and not isinstance(is_error, bool):
        raise InvalidRequest(f"{at}.is_error must be a boolean", param=f"{at}.is_error")
    content = block.get("content")
    images: list[dict[str, Any]] = []
    result: str | list[dict[str, Any]]
    if content is None or isinstance(content, str):
        result = content or ""
        if isinstance(block.get("cache_control"), dict):
            result = [_with_breakpoint({"type": "text", "text": result}, block)]
    else:
        result = []
        for k, item in enumerate(_blocks(content, f"{at}.content")):
            if item["type"] == "image":
                images.append(_image_part(item, f"{at}.content.{k}"))
            else:
                result.append(_text_part(item, f"{at}.content.{k}"))
        if result and isinstance(block.get("cache_control"), dict):
            result[-1] = _with_breakpoint(result[-1], block)
    if is_error:
        result = (
            f"Error: {result}" if isinstance(result, str) else [{"type": "text", "text": "Error:"}, *result]
        )
    return {"role": "tool", "tool_call_id": call_id, "content": result or ""}, images


def _assistant_message(content: Any, at: str) -> dict[str, Any]:
    if isinstance(content, str):
        return {"role": "assistant", "content": content}
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for j, block in enumerate(_blocks(content, f"{at}.content")):
        where, kind = f"{at}.content.{j}", block["type"]
        if kind == "text":
            texts.append(_text_part(block, where)["text"])
        elif kind == "tool_use":
            calls.append(_tool_call(block, where))
        elif kind not in ("thinking", "redacted_thinking"):
            raise InvalidRequest(f"{where}.type '{kind}' is not allowed in an assistant message", param=where)
    message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if calls:
        message["tool_calls"] = calls
    return message


def _tool_call(block: dict[str, Any], at: str) -> dict[str, Any]:
    call_id, name, arguments = block.get("id"), block.get("name"), block.get("input")
    if not isinstance(call_id, str) or not call_id or not isinstance(name, str) or not name:
        raise InvalidRequest(f"{at}: a tool_use block needs a string id and name", param=at)
    if not isinstance(arguments, dict):
        raise InvalidRequest(f"{at}.input must be an object", param=f"{at}.input")
    function = {"name": name, "arguments": orjson.dumps(arguments).decode()}
    return {"id": call_id, "type": "function", "function": function}


def _blocks(content: Any, at: str) -> list[dict[str, Any]]:
    if not isinstance(content, list):
        raise InvalidRequest(f"{at} must be a string or a list of content blocks", param=at)
    for j, block in enumerate(content):
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            raise InvalidRequest(f"{at}.{j} must be a content block with a string 'type'", param=f"{at}.{j}")
    return content
