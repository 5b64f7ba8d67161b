import asyncio

import uvicorn

from gateway.app import create_app, wait_for_dependencies
from gateway.settings import GatewaySettings

settings = GatewaySettings()
app = create_app(settings)
asyncio.run(wait_for_dependencies(settings))
uvicorn.run(app, host=settings.host, port=settings.port, log_config=None, access_log=False)
