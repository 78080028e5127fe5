"""``interlock sim``: run the backend simulator, an OpenAI-compatible server that behaves like an engine."""

from __future__ import annotations

from typing import Annotated

import typer

from interlock.sim import SimConfig, serve

__all__ = ["main", "register", "sim"]

_DEFAULTS = SimConfig()
_TIMING = "Timing"
_ENGINE = "Engine"
_OUTPUT = "Output"


def sim(
    port: Annotated[int, typer.Option(help="TCP port; 0 picks a free one (printed at start).")] = 8100,
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = _DEFAULTS.host,
    name: Annotated[
        str, typer.Option(help="Label shown in /sim/stats and system_fingerprint.")
    ] = _DEFAULTS.name,
    models: Annotated[str, typer.Option(help="Comma-separated names listed by /v1/models.")] = ",".join(
        _DEFAULTS.models
    ),
    ttft_ms: Annotated[float, typer.Option(help="Base time to first token.", rich_help_panel=_TIMING)] = (
        _DEFAULTS.ttft_ms
    ),
    prefill_ms_per_token: Annotated[
        float, typer.Option(help="Prefill cost per uncached prompt token.", rich_help_panel=_TIMING)
    ] = _DEFAULTS.prefill_ms_per_token,
    prefill_ms_per_1k: Annotated[
        float | None,
        typer.Option(
            help="Prefill cost per 1,000 uncached tokens (overrides the per-token cost).",
            rich_help_panel=_TIMING,
        ),
    ] = None,
    tpot_ms: Annotated[
        float, typer.Option(help="Time per output token, batch of one.", rich_help_panel=_TIMING)
    ] = (_DEFAULTS.tpot_ms),
    batch_penalty: Annotated[
        float, typer.Option(help="Decode slow-down per extra sequence in the batch.", rich_help_panel=_TIMING)
    ] = _DEFAULTS.batch_penalty,
    max_concurrency: Annotated[
        int,
        typer.Option(help="Sequences served at once; more wait in a FIFO queue.", rich_help_panel=_ENGINE),
    ] = _DEFAULTS.max_concurrency,
    max_queue: Annotated[
        int | None,
        typer.Option(help="Longest queue; beyond it requests are refused.", rich_help_panel=_ENGINE),
    ] = _DEFAULTS.max_queue,
    queue_full_status: Annotated[
        int, typer.Option(help="Status for a full queue: 503 or 429.", rich_help_panel=_ENGINE)
    ] = _DEFAULTS.queue_full_status,
    queue_full_retry_after_s: Annotated[
        float, typer.Option(help="Retry-After sent with a full queue.", rich_help_panel=_ENGINE)
    ] = _DEFAULTS.queue_full_retry_after_s,
    context_window: Annotated[
        int, typer.Option(help="Largest prompt plus completion, in tokens.", rich_help_panel=_ENGINE)
    ] = _DEFAULTS.context_window,
    prefix_block_size: Annotated[
        int, typer.Option(help="Prefix cache block size in tokens.", rich_help_panel=_ENGINE)
    ] = _DEFAULTS.prefix_block_size,
    prefix_cache_blocks: Annotated[
        int, typer.Option(help="Prefix cache capacity in blocks (0: off).", rich_help_panel=_ENGINE)
    ] = _DEFAULTS.prefix_cache_blocks,
    default_max_tokens: Annotated[
        int, typer.Option(help="Token cap when a request sets none.", rich_help_panel=_OUTPUT)
    ] = _DEFAULTS.default_max_tokens,
    output_tokens_min: Annotated[
        int, typer.Option(help="Shortest natural answer, in tokens.", rich_help_panel=_OUTPUT)
    ] = _DEFAULTS.output_tokens_min,
    output_tokens_max: Annotated[
        int, typer.Option(help="Longest natural answer, in tokens.", rich_help_panel=_OUTPUT)
    ] = _DEFAULTS.output_tokens_max,
    embedding_dim: Annotated[
        int, typer.Option(help="Dimension of embedding vectors.", rich_help_panel=_OUTPUT)
    ] = _DEFAULTS.embedding_dim,
    api_key: Annotated[
        str | None, typer.Option(help="Require 'Authorization: Bearer KEY' on /v1 routes.")
    ] = _DEFAULTS.api_key,
    seed: Annotated[int, typer.Option(help="Seed of generated text and fault dice.")] = _DEFAULTS.seed,
) -> None:
    """Run the backend simulator: an OpenAI-compatible server that behaves like an inference engine."""
    try:
        config = SimConfig(
            host=host,
            port=port,
            name=name,
            models=tuple(m.strip() for m in models.split(",") if m.strip()),
            ttft_ms=ttft_ms,
            prefill_ms_per_token=prefill_ms_per_1k / 1000
            if prefill_ms_per_1k is not None
            else prefill_ms_per_token,
            tpot_ms=tpot_ms,
            batch_penalty=batch_penalty,
            max_concurrency=max_concurrency,
            max_queue=max_queue,
            queue_full_status=queue_full_status,
            queue_full_retry_after_s=queue_full_retry_after_s,
            context_window=context_window,
            default_max_tokens=default_max_tokens,
            output_tokens_min=output_tokens_min,
            output_tokens_max=output_tokens_max,
            prefix_block_size=prefix_block_size,
            prefix_cache_blocks=prefix_cache_blocks,
            embedding_dim=embedding_dim,
            api_key=api_key,
            seed=seed,
        )
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    serve(config)


def register(app: typer.Typer) -> None:
    """Add the ``sim`` command to the main ``interlock`` app."""
    app.command("sim")(sim)


def main() -> None:
    """Entry point of ``python -m interlock.sim``: the ``sim`` command on its own."""
    app = typer.Typer(add_completion=False)
    register(app)
    app()
