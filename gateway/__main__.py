import uvicorn

from gateway.app import create_app
from gateway.settings import GatewaySettings

settings = GatewaySettings()
uvicorn.run(create_app(settings), host=settings.host, port=settings.port, log_config=None, access_log=False)
