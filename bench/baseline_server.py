"""The baselines' server: a bare Starlette app on uvicorn with one JSON endpoint and a websocket
broadcast, so the gateway's figures can be read as ratios against the same stack doing nothing."""

from __future__ import annotations

import json
import sys
import time

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

clients: set[WebSocket] = set()


async def item(request: Request) -> JSONResponse:
    return JSONResponse({"id": "00000000-0000-0000-0000-000000000000", "state": "detected"})


async def broadcast(request: Request) -> JSONResponse:
    message = json.dumps({"sent_at": time.time()})
    for ws in list(clients):
        try:
            await ws.send_text(message)
        except Exception:
            clients.discard(ws)
    return JSONResponse({"sent": len(clients)})


async def feed(websocket: WebSocket) -> None:
    await websocket.accept()
    clients.add(websocket)
    try:
        while True:
            await websocket.receive_text()
    except WebSocketDisconnect:
        clients.discard(websocket)


app = Starlette(
    routes=[
        Route("/item", item),
        Route("/broadcast", broadcast, methods=["POST"]),
        WebSocketRoute("/ws", feed),
    ]
)

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
