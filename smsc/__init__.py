"""The project's own SMS center (an SMPP 3.4 server): a test and demo tool, not the product."""
