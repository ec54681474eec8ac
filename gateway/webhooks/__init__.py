"""The signed webhook feed: intake, per-survey queues, sender, signing, dead letters."""
