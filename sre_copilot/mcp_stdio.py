"""`sre-copilot mcp`: the platform's MCP server over stdio, for assistants that launch a local command.

A proxy rather than a second server: it connects to a running platform's `/mcp` with an integration
key (the official SDK's client, streamable HTTP) and serves over stdin/stdout whatever that endpoint
lists, forwarding each call. So the tools, their schemas and descriptions, the resource and the prompt
are the platform's own, byte for byte, and every check (the key, its scopes, the tenant) happens there.
Each side speaks whichever protocol version its peer does (the SDK negotiates both)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx2
import mcp_types as types
from mcp import Client, MCPError
from mcp.client.streamable_http import streamable_http_client
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel import Server
from mcp.server.stdio import stdio_server

USER_AGENT = "sre-copilot-mcp-stdio"


class PlatformUnreachable(Exception):
    """The platform could not be reached, or refused the key, when the proxy started."""


def endpoint(url: str) -> str:
    """`http://host:8000` and `http://host:8000/mcp` both name the endpoint."""
    url = url.rstrip("/")
    return url if url.endswith("/mcp") else f"{url}/mcp"


async def check_key(url: str, key: str) -> None:
    """Fail fast, with the platform's own words, when the URL or the key is wrong: the MCP client
    would only say that a request failed."""
    async with httpx2.AsyncClient(timeout=10) as http:
        try:
            answer = await http.post(
                endpoint(url),
                headers={"Authorization": f"Bearer {key}", "Accept": "application/json, text/event-stream"},
                json={"jsonrpc": "2.0", "id": 0, "method": "ping"},
            )
        except httpx2.HTTPError as exc:
            raise PlatformUnreachable(f"cannot reach {endpoint(url)}: {exc}") from exc
    if answer.status_code in (401, 403, 404):
        try:
            reason = answer.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            reason = answer.text[:200]
        raise PlatformUnreachable(f"{endpoint(url)} answered {answer.status_code}: {reason}")


@asynccontextmanager
async def remote(url: str, key: str) -> AsyncIterator[Client]:
    """An SDK client of the platform's `/mcp`, authenticated with the key on every request."""
    headers = {"Authorization": f"Bearer {key}", "User-Agent": USER_AGENT}
    timeout = httpx2.Timeout(30.0, read=300.0)
    async with (
        httpx2.AsyncClient(headers=headers, timeout=timeout) as http,
        Client(streamable_http_client(endpoint(url), http_client=http)) as client,
    ):
        yield client


def proxy_server(client: Client) -> Server[Any]:
    """A low-level server whose every handler asks `client`: results pass through unchanged."""

    async def list_tools(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return await client.list_tools(cursor=params.cursor if params else None)

    async def call_tool(
        ctx: ServerRequestContext[Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        try:
            return await client.call_tool(params.name, params.arguments)
        except MCPError:
            raise
        except Exception as exc:  # the platform went away mid-call: tell the model, not a crash
            text = f"the platform did not answer: {type(exc).__name__}: {exc}"
            return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)

    async def list_resources(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourcesResult:
        return await client.list_resources(cursor=params.cursor if params else None)

    async def list_resource_templates(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListResourceTemplatesResult:
        return await client.list_resource_templates(cursor=params.cursor if params else None)

    async def read_resource(
        ctx: ServerRequestContext[Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        return await client.read_resource(str(params.uri))

    async def list_prompts(
        ctx: ServerRequestContext[Any], params: types.PaginatedRequestParams | None
    ) -> types.ListPromptsResult:
        return await client.list_prompts(cursor=params.cursor if params else None)

    async def get_prompt(
        ctx: ServerRequestContext[Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        return await client.get_prompt(params.name, params.arguments)

    info = client.server_info
    return Server(
        info.name if info else "sre-copilot",
        version=info.version if info else "",
        title=info.title if info else None,
        instructions=client.instructions,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
        on_list_resources=list_resources,
        on_list_resource_templates=list_resource_templates,
        on_read_resource=read_resource,
        on_list_prompts=list_prompts,
        on_get_prompt=get_prompt,
    )


async def serve(url: str, key: str) -> None:
    """Serve the platform's MCP tools on stdin/stdout until stdin closes."""
    await check_key(url, key)
    async with remote(url, key) as client, stdio_server() as (read_stream, write_stream):
        server = proxy_server(client)
        await server.run(read_stream, write_stream, server.create_initialization_options())
