"""The callback dialer: AMI, call tracking, pacing, attempts, Asterisk configuration."""
