"""The OAuth app's settings: read from the environment, checked with one-line errors, the secret never shown."""

import pytest
from pydantic import ValidationError

from relay.settings import Settings, describe_error


def test_defaults_and_values(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings(_env_file=None)  # type: ignore[call-arg]
    assert defaults.brightpearl_oauth_url == "https://oauth.brightpearl.com"
    assert defaults.oauth_budget_share == 0.9
    assert (defaults.brightpearl_app_ref, defaults.brightpearl_client_secret, defaults.brightpearl_dev_ref) == (
        None,
        None,
        None,
    )
    monkeypatch.setenv("RELAY_BRIGHTPEARL_APP_REF", "acme_relay")
    monkeypatch.setenv("RELAY_BRIGHTPEARL_CLIENT_SECRET", "very+secret/==")
    monkeypatch.setenv("RELAY_BRIGHTPEARL_DEV_REF", "dev-1")
    monkeypatch.setenv("RELAY_BRIGHTPEARL_OAUTH_URL", "http://127.0.0.1:9100/oauth/")
    monkeypatch.setenv("RELAY_OAUTH_BUDGET_SHARE", "0.5")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.brightpearl_app_ref == "acme_relay"
    assert settings.brightpearl_dev_ref == "dev-1"
    assert settings.brightpearl_client_secret is not None
    assert settings.brightpearl_client_secret.get_secret_value() == "very+secret/=="
    assert settings.brightpearl_oauth_url == "http://127.0.0.1:9100/oauth"
    assert settings.oauth_budget_share == 0.5
    assert "very+secret" not in repr(settings)


def test_empty_values_are_not_set() -> None:
    settings = Settings(_env_file=None, brightpearl_app_ref=" ", brightpearl_client_secret="", brightpearl_dev_ref="")  # type: ignore[call-arg]
    assert (settings.brightpearl_app_ref, settings.brightpearl_client_secret, settings.brightpearl_dev_ref) == (
        None,
        None,
        None,
    )


@pytest.mark.parametrize(
    ("name", "value", "says"),
    [
        (
            "brightpearl_oauth_url",
            "oauth.brightpearl.com",
            "absolute http(s) URL such as https://oauth.brightpearl.com",
        ),
        ("brightpearl_oauth_url", "https://oauth.brightpearl.com/?x=1", "without a query"),
        ("oauth_budget_share", 0, "greater than 0"),
        ("oauth_budget_share", 1.5, "less than or equal to 1"),
    ],
)
def test_bad_values_are_one_line(name: str, value: object, says: str) -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, **{name: value})  # type: ignore[call-arg]
    line = describe_error(raised.value)
    assert line.startswith(f"RELAY_{name.upper()}: ")
    assert says in line
    assert "\n" not in line


def test_the_client_secret_is_never_echoed() -> None:
    with pytest.raises(ValidationError) as raised:
        Settings(_env_file=None, brightpearl_client_secret=["not", "a", "string", "s3cr3t"])  # type: ignore[call-arg]
    line = describe_error(raised.value)
    assert line.startswith("RELAY_BRIGHTPEARL_CLIENT_SECRET: ")
    assert "s3cr3t" not in line
