"""Minyi Gateway (民意网关): the SMS and telephony edge of a satisfaction-survey system."""

__version__ = "0.1.0"
