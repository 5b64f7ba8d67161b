from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from runtime.settings import JwtSettings, ServiceSettings


class AuthSettings(ServiceSettings, JwtSettings):
    # PEM of the RSA key that signs access tokens: inline, or a file (what `sre-copilot up` writes).
    jwt_private_key: SecretStr | None = None
    jwt_private_key_file: Path | None = None

    def private_key_pem(self) -> str:
        if self.jwt_private_key is not None:
            return self.jwt_private_key.get_secret_value()
        if self.jwt_private_key_file is not None:
            return self.jwt_private_key_file.read_text()
        raise RuntimeError("auth needs JWT_PRIVATE_KEY or JWT_PRIVATE_KEY_FILE (an RSA private key, PEM)")
