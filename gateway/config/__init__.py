"""The gateway's configuration: one TOML file, every setting checked before anything
starts (the reader is :mod:`gateway.config.reader`; one module per section)."""

from gateway.config.reader import (
    ApiSettings,
    ApiToken,
    ConfigError,
    LogSettings,
    QuietHours,
    Settings,
    SmppBind,
    SmsSettings,
    SurveySettings,
    WebhookEndpoint,
    env_name,
    load_settings,
    load_templates,
    parse_settings,
    redacted,
    template_specs,
)

__all__ = [
    "ApiSettings",
    "ApiToken",
    "ConfigError",
    "LogSettings",
    "QuietHours",
    "Settings",
    "SmppBind",
    "SmsSettings",
    "SurveySettings",
    "WebhookEndpoint",
    "env_name",
    "load_settings",
    "load_templates",
    "parse_settings",
    "redacted",
    "template_specs",
]
