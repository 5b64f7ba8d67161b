import asyncio
import socket

import uvicorn

from gateway.app import create_app, wait_for_dependencies
from gateway.settings import GatewaySettings

settings = GatewaySettings()
app = create_app(settings)
asyncio.run(wait_for_dependencies(settings))
config = uvicorn.Config(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
if settings.reuse_port:
    listener = socket.socket(socket.AF_INET6 if ":" in settings.host else socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    listener.bind((settings.host, settings.port))
    uvicorn.Server(config).run(sockets=[listener])
else:
    uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
