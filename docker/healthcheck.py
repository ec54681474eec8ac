"""The image's HEALTHCHECK: GET $MINYI_HEALTH_URL (default http://127.0.0.1:8080/healthz);
healthy when it answers 200 within 4 s.

Over HTTPS the certificate names the site's host, not 127.0.0.1, so this check (on the
container's own loopback) does not verify it: it asks whether the gateway is well, not
who it is."""

import os
import ssl
import sys
import urllib.request

url = os.environ.get("MINYI_HEALTH_URL", "http://127.0.0.1:8080/healthz")
context = ssl._create_unverified_context() if url.startswith("https:") else None
try:
    with urllib.request.urlopen(url, timeout=4, context=context) as response:
        sys.exit(0 if response.status == 200 else 1)
except Exception as exc:  # any failure is "unhealthy", with the reason in docker inspect
    print(f"unhealthy: {exc}", file=sys.stderr)
    sys.exit(1)
