"""CMPP 2.0 and 3.0, China Mobile's SP-to-ISMG protocol: constants, the sans-IO codec,
and the asyncio bind that drives it (`sms.cmpp.bind.CmppBind`)."""
