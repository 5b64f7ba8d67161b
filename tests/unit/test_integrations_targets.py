"""Where a webhook request really goes: the host is resolved, every address checked, and the request
aimed at the checked address with the original host name kept for the Host header and TLS."""

from __future__ import annotations

import pytest

from integrations.outbound import TargetRefused, pin_target, scrub


async def test_a_name_resolving_to_a_private_address_is_refused() -> None:
    with pytest.raises(TargetRefused):
        await pin_target("http://localhost:8080/hook", allow_private=False)
    with pytest.raises(TargetRefused):
        await pin_target("https://169.254.169.254/latest/meta-data", allow_private=False)


async def test_the_request_goes_to_the_checked_address_under_its_own_name() -> None:
    target = await pin_target("https://localhost:8443/hook?x=1", allow_private=True)
    assert target.url in ("https://127.0.0.1:8443/hook?x=1", "https://[::1]:8443/hook?x=1")
    assert target.headers == {"Host": "localhost:8443"}
    assert target.extensions == {"sni_hostname": "localhost"}  # the certificate is checked for the name

    literal = await pin_target("http://127.0.0.1/hook", allow_private=True)
    assert (literal.url, literal.headers, literal.extensions) == (
        "http://127.0.0.1/hook",
        {"Host": "127.0.0.1"},
        {},
    )


def test_errors_never_show_the_url_a_slack_webhook_hides_its_secret_in() -> None:
    url = "https://hooks.slack.com/services/T0AAA/B0BBB/sEcReTtOkEn?x=token"
    message = f"ConnectError: cannot reach {url} (via https://10.0.0.1/services/T0AAA/B0BBB/sEcReTtOkEn)"
    cleaned = scrub(message, url)
    assert "sEcReTtOkEn" not in cleaned and "x=token" not in cleaned
    assert cleaned.startswith("ConnectError: cannot reach <redacted>")
