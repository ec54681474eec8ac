"""The gateway's configuration: one TOML file, every setting checked before anything
starts. The ground floor of the project: it imports no other package of it.

One module per section (``api``, ``surveys``, ``sms`` with ``binds``, ``webhooks``, ``dialer`` with
``ami`` and ``asterisk``, ``asr``, ``recordings``, ``log``), the root table and the file
in ``settings``, the value checks they share in ``reader``, secrets hidden for display
in ``redaction``. Checks that need a domain's code run at start (gateway/startup.py).
Import the names from here.
"""

from gateway.config.ami import AmiSettings
from gateway.config.api import ApiSettings, ApiToken, DeskSettings, DeskUser
from gateway.config.asr import AsrSettings, ModelChoice
from gateway.config.asterisk import AgentPhone, AsteriskSettings, UnitQueue
from gateway.config.binds import CmppBind, SmppBind
from gateway.config.dialer import CallingHours, DialerSettings, NumberRule, rewrite
from gateway.config.reader import ConfigError, env_name
from gateway.config.recordings import RecordingsSettings
from gateway.config.redaction import plain, redact_url, redacted
from gateway.config.settings import (
    LogSettings,
    RedisSettings,
    Settings,
    load_settings,
    parse_settings,
    sentinel_url,
)
from gateway.config.sms import SmsRoute, SmsSettings, template_specs
from gateway.config.surveys import QuietHours, SurveySettings
from gateway.config.webhooks import WebhookEndpoint

__all__ = [
    "AgentPhone",
    "AmiSettings",
    "ApiSettings",
    "ApiToken",
    "AsrSettings",
    "AsteriskSettings",
    "CallingHours",
    "CmppBind",
    "ConfigError",
    "DeskSettings",
    "DeskUser",
    "DialerSettings",
    "LogSettings",
    "ModelChoice",
    "NumberRule",
    "QuietHours",
    "RecordingsSettings",
    "RedisSettings",
    "Settings",
    "SmppBind",
    "SmsRoute",
    "SmsSettings",
    "SurveySettings",
    "UnitQueue",
    "WebhookEndpoint",
    "env_name",
    "load_settings",
    "parse_settings",
    "plain",
    "redact_url",
    "redacted",
    "rewrite",
    "sentinel_url",
    "template_specs",
]
