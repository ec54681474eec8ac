"""SMS side of the gateway: SMPP, text encoding, receipts, replies."""
