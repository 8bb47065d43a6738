"""Signing in with an OpenID provider (step 12+), in real Chromium: the whole round trip through the provider's pages."""

from urllib.parse import urlsplit

import pytest

from actions import words


def path(page):
    return urlsplit(page.url).path


@pytest.mark.features("login", "profile", "openid-connect")
def test_sign_in_with_the_provider_makes_an_account_then_logs_in_to_it(page, server):
    page.goto(server.url("/login"))
    page.get_by_role("button", name="Sign in with Example ID").click()
    # The provider's own pages (its development login: any name, any password).
    page.wait_for_url(lambda url: url.startswith(server.provider.issuer))
    page.locator('input[name="login"]').fill("lovelace")
    page.locator('input[name="password"]').fill("any password")
    page.locator('button[type="submit"]').click()
    # Its consent page: this site asks for the openid, email and profile scopes.
    page.wait_for_url(lambda url: url.startswith(server.provider.issuer) and "/interaction/" in url)
    page.locator('button[type="submit"]').click()
    page.wait_for_url(server.url("/profile"))
    assert "lovelace" in words(page)

    # Logged out, the same provider account logs in to the same account, with no consent asked again.
    page.goto(server.url("/"))
    page.get_by_role("button", name="Log out").click()
    page.goto(server.url("/login"))
    page.get_by_role("button", name="Sign in with Example ID").click()
    page.wait_for_url(server.url("/profile"))
    assert "lovelace" in words(page) and path(page) == "/profile"
