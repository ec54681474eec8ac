"""Callback recordings on disk: naming, the index in Redis, retention and signed access.

- :mod:`recordings.naming` - ``<base>.wav`` (the mix) and its ``-citizen``, ``-agent``,
  ``-reason`` legs; names are validated before they touch the file system;
- :mod:`recordings.index` - which survey and callback a recording belongs to;
- :mod:`recordings.retention` - deleting recordings (and their kept transcripts) after
  N days, with a ``recording.deleted`` event on the survey's feed;
- :mod:`recordings.access` - short-lived signed URLs and the aiohttp route serving them.
"""
