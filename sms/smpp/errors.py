"""The codec's two error families, as in h11: our misuse, and the peer's fault.

* `LocalProtocolError` — we were asked to build something SMPP 3.4 forbids (a field
  too long, a request with a non-zero status). A bug on our side.
* `RemoteProtocolError` — the peer sent something we cannot parse. When the PDU's
  length header was sane the bad PDU has been consumed and the decoder keeps going, so
  a server can answer `generic_nack` and carry on (`fatal` is False). An insane length
  (< 16 or > `MAX_PDU_LENGTH`) leaves no way to find the next PDU boundary: `fatal` is
  True, the decoder stays broken and the connection must be closed.
"""

from __future__ import annotations

from sms.smpp.constants import CommandStatus


class LocalProtocolError(Exception):
    """We were asked to encode something SMPP 3.4 does not allow."""


class RemoteProtocolError(Exception):
    """The peer sent bytes that are not a valid SMPP 3.4 PDU.

    `command_id` and `sequence` come from the offending header so a server can answer
    `generic_nack` with `status` (the command_status the spec suggests for this fault).
    `fatal` means the framing is lost and the connection must be closed.
    """

    def __init__(
        self,
        command_id: int,
        sequence: int,
        reason: str,
        *,
        status: int = CommandStatus.ESME_RSYSERR,
        fatal: bool = False,
    ) -> None:
        super().__init__(f"{reason} (command_id=0x{command_id:08X}, sequence={sequence})")
        self.command_id = command_id
        self.sequence = sequence
        self.reason = reason
        self.status = status
        self.fatal = fatal
