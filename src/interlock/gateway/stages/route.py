"""``route``: the terminal stage. Choose a deployment and run the attempt against its provider."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping

from interlock.errors import GatewayError, InvalidRequest, ModelNotFound, UpstreamStreamBroken
from interlock.gateway.chain import Next
from interlock.gateway.context import Attempt, Chunk, Reply, RequestContext
from interlock.providers.base import Provider, UpstreamReply
from interlock.routing.balancer import Balancer
from interlock.routing.snapshot import Deployment, SnapshotRef

__all__ = ["RouteStage"]


class RouteStage:
    def __init__(self, snapshot: SnapshotRef, providers: Mapping[str, Provider], balancer: Balancer) -> None:
        self._snapshot = snapshot
        self._providers = providers
        self._balancer = balancer

    async def __call__(self, ctx: RequestContext, call_next: Next) -> Reply:
        route = self._snapshot.current.models.get(ctx.model)
        if route is None:
            raise ModelNotFound(f"The model '{ctx.model}' does not exist.", param="model")
        if route.kind != ctx.operation:
            raise InvalidRequest(
                f"The model '{ctx.model}' serves {route.kind}, not {ctx.operation}.", param="model"
            )
        deployment = self._balancer.choose(route.deployments)
        ctx.deployment = deployment
        return await self._attempt(ctx, deployment)

    async def _attempt(self, ctx: RequestContext, deployment: Deployment) -> Reply:
        provider = self._providers[deployment.provider]
        body = dict(ctx.body)
        body["model"] = deployment.upstream_model
        started = time.perf_counter()
        try:
            if ctx.stream:
                reply = await _open_stream(provider, body)
            elif ctx.operation == "embeddings":
                reply = _complete(await provider.embeddings(body))
            else:
                reply = _complete(await provider.chat(body))
        except GatewayError as exc:
            self._record(ctx, deployment, exc.kind, started)
            raise
        self._record(ctx, deployment, "ok", started)
        return reply

    @staticmethod
    def _record(ctx: RequestContext, deployment: Deployment, outcome: str, started: float) -> None:
        spent = time.perf_counter() - started
        ctx.upstream_s += spent
        ctx.attempts.append(Attempt(deployment.id, outcome, round(spent * 1000.0, 3)))


def _complete(upstream: UpstreamReply) -> Reply:
    return Reply(body=upstream.body, raw=upstream.raw)


async def _open_stream(provider: Provider, body: dict[str, object]) -> Reply:
    """Start the upstream stream and wait for its first chunk, so that a failure before the first
    byte is still an ordinary error (a status code, a retry) rather than a broken stream."""
    chunks = provider.chat_stream(body)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        raise UpstreamStreamBroken("upstream ended the stream before sending anything") from None
    except BaseException:
        await _aclose(chunks)
        raise
    return Reply(stream=_prepend(first, chunks))


async def _prepend(first: Chunk, rest: AsyncIterator[Chunk]) -> AsyncIterator[Chunk]:
    try:
        yield first
        async for chunk in rest:
            yield chunk
    finally:
        await _aclose(rest)


async def _aclose(chunks: AsyncIterator[Chunk]) -> None:
    aclose = getattr(chunks, "aclose", None)
    if aclose is not None:
        await aclose()
