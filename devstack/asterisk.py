"""A real Asterisk 22 in the provisioned chroot, on loopback, for the tests, the demo and
the benchmarks.

``provision()`` runs ``scripts/asterisk/provision.sh`` (downloads on first use, reuses
afterwards). ``AsteriskProcess`` renders the gateway's configs (``gateway.dialer.asterisk``)
plus the test "outside world" (``dialplans/test/``) into a per-session directory inside
the chroot, starts ``chroot ROOT /usr/sbin/asterisk -f`` on free loopback ports, waits
for AMI to log in and report FullyBooted, and stops it with SIGTERM (SIGKILL after a
grace period).

Two SIP transports on one Asterisk: the gateway's (``127.0.0.1``) and the outside
world's (``127.0.0.2``, the carrier's citizens and the agents' phones). They sit on two
loopback addresses because PJSIP identifies endpoints by source address, not port.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from devstack.localstack import free_port, free_sip_port
from gateway.config import AgentPhone, AsteriskSettings, UnitQueue
from gateway.dialer import asterisk as asterisk_conf

__all__ = [
    "AGENTS_A",
    "AGENTS_B",
    "AGENT_TALK_LOOPS_VAR",
    "GATEWAY_IP",
    "UNIT_A",
    "UNIT_B",
    "WORLD_IP",
    "AsteriskHarnessError",
    "AsteriskInfo",
    "AsteriskProcess",
    "SitePbx",
    "asterisk_home",
    "provision",
    "read_version",
    "voice_seconds",
    "wav_rms",
    "wav_seconds",
]

REPO = Path(__file__).resolve().parent.parent
PROVISION = REPO / "scripts" / "asterisk" / "provision.sh"
WORLD_TEMPLATES = REPO / "dialplans" / "test"
DEFAULT_HOME = "/var/cache/minyi/asterisk"
GATEWAY_IP = "127.0.0.1"
WORLD_IP = "127.0.0.2"
SESSIONS_IN_CHROOT = "/var/lib/minyi/sessions"
# Where provision.sh installs the voices (played as minyi/<name>).
VOICES_IN_CHROOT = "usr/share/asterisk/sounds/minyi"
# Each network step of provision.sh gets this long; the test fixture's own timeout
# (pytest-timeout) is set above twice this so the script's clear message wins.
PROVISION_STEP_TIMEOUT_S = 240
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0

# A global dialplan variable (AMI Setvar without a channel): how many times the agents'
# phones say their line before hanging up; empty means the AsteriskProcess default. A
# test that ends calls itself keeps the agents talking with it.
AGENT_TALK_LOOPS_VAR = "MINYI_TEST_AGENT_TALK_LOOPS"

# The test deployment: two units, three agents.
UNIT_A = "330602"
UNIT_B = "330603"
AGENTS_A = ("agent1", "agent2")
AGENTS_B = ("agent3",)


class AsteriskHarnessError(RuntimeError):
    """Provisioning or starting the test Asterisk failed; the message says why."""


def asterisk_home() -> Path:
    """Where provision.sh keeps the .debs, the chroot and the voices."""
    return Path(os.environ.get("MINYI_ASTERISK_HOME", DEFAULT_HOME))


def provision() -> dict[str, str]:
    """Run provision.sh (idempotent) and return the VERSION record it left."""
    env = dict(os.environ, MINYI_PROVISION_TIMEOUT=str(PROVISION_STEP_TIMEOUT_S))
    try:
        proc = subprocess.run(
            ["bash", str(PROVISION)],
            env=env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=3 * PROVISION_STEP_TIMEOUT_S + 300,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise AsteriskHarnessError(f"{PROVISION} did not finish in time") from None
    if proc.returncode != 0:
        errors = [line for line in proc.stderr.splitlines() if "ERROR" in line]
        detail = errors[-1] if errors else (proc.stderr.strip() or proc.stdout.strip())
        raise AsteriskHarnessError(f"provisioning Asterisk failed: {detail}")
    return read_version(asterisk_home())


def read_version(home: Path) -> dict[str, str]:
    """The key=value lines of HOME/VERSION (asterisk=, downloaded=, mirror=, ...)."""
    out: dict[str, str] = {}
    for line in (home / "VERSION").read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key] = value
    return out


@dataclass(frozen=True)
class AsteriskInfo:
    """What a test needs to talk to the running Asterisk."""

    host: str
    ami_port: int
    ami_username: str
    ami_secret: str
    sip_port: int
    world_port: int
    trunk: str
    recordings_dir: Path  # on the host
    recordings_dir_in_chroot: str
    version: str
    log_file: Path


class AsteriskProcess:
    """One Asterisk per test session, in the shared provisioned chroot."""

    def __init__(
        self,
        root: Path,
        version: str,
        agent_count: int = 3,
        units: tuple[UnitQueue, ...] | None = None,
        agent_talk_loops: int = 1,
        *,
        tune: Mapping[str, Any] | None = None,
        world_pjsip: str = "",
        world_extensions: str = "",
    ) -> None:
        self.root = root
        self.version = version
        self.session = f"{os.getpid()}-{secrets.token_hex(4)}"
        self.chroot_dir = f"{SESSIONS_IN_CHROOT}/{self.session}"
        self.dir = root / self.chroot_dir.lstrip("/")
        self.ami_port = free_port(GATEWAY_IP)
        # SIP ports free for TCP too: a test's trunk or carrier may add a TCP transport
        self.sip_port = free_sip_port(GATEWAY_IP)
        self.world_port = free_sip_port(WORLD_IP)
        self.ami_username = "minyi"
        self.ami_secret = secrets.token_hex(12)
        self.agent_names = tuple(f"agent{i}" for i in range(1, agent_count + 1))
        self.units = units or (UnitQueue(UNIT_A, AGENTS_A), UnitQueue(UNIT_B, AGENTS_B))
        # How many times an agent's phone says its line (minyi/agent-hello, a few
        # seconds) before it hangs up, unless a test sets AGENT_TALK_LOOPS_VAR.
        self.agent_talk_loops = agent_talk_loops
        self.proc: subprocess.Popen[bytes] | None = None
        self._console: object | None = None
        # A test's own variant: settings changed (dataclasses.replace) and outside-world
        # sections added ({{world_bind}}, {{world_port}}, {{gateway_bind}} filled in).
        self.tune = dict(tune or {})
        self.world_pjsip = world_pjsip
        self.world_extensions = world_extensions

    # --- configuration -----------------------------------------------------------------
    def settings(self) -> AsteriskSettings:
        """The gateway settings this session's Asterisk is rendered from."""
        return dataclasses.replace(self._base_settings(), **self.tune)

    def _base_settings(self) -> AsteriskSettings:
        return AsteriskSettings(
            ami_username=self.ami_username,
            ami_secret=self.ami_secret,
            ami_port=self.ami_port,
            recordings_dir=f"{self.chroot_dir}/recordings",
            sip_bind=GATEWAY_IP,
            sip_port=self.sip_port,
            trunk_host=WORLD_IP,
            trunk_port=self.world_port,
            agents=tuple(
                AgentPhone(name=a, contact=f"sip:{a}@{WORLD_IP}:{self.world_port}")
                for a in self.agent_names
            ),
            units=self.units,
            agent_ring_s=8,
            queue_timeout_s=30,
            ivr_digit_timeout_s=6,
            reason_max_s=30,
            reason_silence_s=0,
            # The test agents are always members (the phone-less world answers for
            # them); tests of logging in and out tune this on.
            agents_log_in=False,
            # Their "phones" are this Asterisk's own world listener, not devices:
            # qualifying Asterisk against itself proves nothing, and under load an
            # OPTIONS answered late marked a test agent unreachable mid-call (no
            # AgentConnect). Presence of real phones is tested with baresip (the
            # asterisk conftest's `pbx`, qualified every second).
            agent_qualify_s=0,
        )

    def _world(self, settings: AsteriskSettings) -> tuple[str, str]:
        values = {
            "world_bind": WORLD_IP,
            "world_port": str(self.world_port),
            "gateway_bind": GATEWAY_IP,
            "codecs": ",".join(settings.codecs),
            "agent_extensions": "\n".join(
                f"exten => {a},1,Answer()\n"
                " same => n,Set(I=0)\n"
                " same => n(talk),Playback(minyi/agent-hello)\n"
                " same => n,Set(I=$[${I} + 1])\n"
                # Read on every loop, so a test that lowers it ends a call it kept going.
                f' same => n,Set(LOOPS=${{IF($["${{GLOBAL({AGENT_TALK_LOOPS_VAR})}}" = ""]'
                f"?{self.agent_talk_loops}:${{GLOBAL({AGENT_TALK_LOOPS_VAR})}})}})\n"
                " same => n,GotoIf($[${I} < ${LOOPS}]?talk)\n"
                " same => n,Hangup(16)\n"
                for a in self.agent_names
            ),
        }
        pjsip = (WORLD_TEMPLATES / "world-pjsip.conf.tmpl").read_text()
        ext = (WORLD_TEMPLATES / "world-extensions.conf.tmpl").read_text()
        return (
            asterisk_conf.render_template(pjsip, values),
            asterisk_conf.render_template(ext, values),
        )

    def write_configs(self) -> None:
        """Render every config file into the session's etc directory."""
        etc = self.dir / "etc"
        for sub in ("etc", "run", "log", "spool", "lib", "cache", "recordings"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        files = self._pbx_files()
        d = self.chroot_dir
        files["asterisk.conf"] = (
            "[directories]\n"
            f"astetcdir => {d}/etc\n"
            "astmoddir => /usr/lib/x86_64-linux-gnu/asterisk/modules\n"
            f"astvarlibdir => {d}/lib\n"
            f"astdbdir => {d}/lib\n"
            f"astkeydir => {d}/lib\n"
            "astdatadir => /usr/share/asterisk\n"
            "astagidir => /usr/share/asterisk/agi-bin\n"
            f"astspooldir => {d}/spool\n"
            f"astrundir => {d}/run\n"
            f"astlogdir => {d}/log\n"
            f"astcachedir => {d}/cache\n"
            "astsbindir => /usr/sbin\n"
            "[options]\n"
            "verbose = 3\n"
            "nocolor = yes\n"
            # Keep RTP flowing while a channel only plays or records, so every
            # recording leg has real frames (silence is written, not skipped).
            "transmit_silence = yes\n"
            "maxcalls = 200\n"
            "hideconnect = yes\n"
        )
        files["logger.conf"] = (
            "[general]\ndateformat=%F %T.%3q\n[logfiles]\n"
            "messages.log => notice,warning,error,verbose(3)\n"
        )
        files["rtp.conf"] = "[general]\nrtpstart=10000\nrtpend=20000\n"
        files["cdr.conf"] = "[general]\nenable=no\n"
        files["cel.conf"] = "[general]\nenable=no\n"
        files["musiconhold.conf"] = "[general]\n"
        files["features.conf"] = "[general]\n"
        files["pjproject.conf"] = "[startup]\nlog_level=0\n"
        # Present but empty: silences "Unable to load config file" errors at startup.
        for name in ("acl.conf", "udptl.conf", "ccss.conf", "queuerules.conf"):
            files[name] = ""
        for name, text in files.items():
            (etc / name).write_text(text, encoding="utf-8")
        shutil.copy(self.root / "etc/asterisk/modules.conf", etc / "modules.conf")
        shutil.copy(self.root / "etc/asterisk/indications.conf", etc / "indications.conf")

    def _pbx_files(self) -> dict[str, str]:
        """The configs that make the PBX: the gateway's rendered files and the world."""
        settings = self.settings()
        files = asterisk_conf.render(settings)
        world_pjsip, world_ext = self._world(settings)
        files["pjsip.conf"] += world_pjsip + self._world_extra(self.world_pjsip)
        files["extensions.conf"] += world_ext + self._world_extra(self.world_extensions)
        return files

    def _world_extra(self, template: str) -> str:
        values = {
            "world_bind": WORLD_IP,
            "world_port": str(self.world_port),
            "gateway_bind": GATEWAY_IP,
            "session_dir": self.chroot_dir,
        }
        return "\n" + asterisk_conf.render_template(template, values) if template else ""

    # --- process -----------------------------------------------------------------------
    def start(self) -> AsteriskInfo:
        """Start Asterisk and wait until AMI accepts our login and it is fully booted."""
        _reap_stale_sessions(self.root / SESSIONS_IN_CHROOT.lstrip("/"))
        self.write_configs()
        (self.dir / "owner.pid").write_text(str(os.getpid()))
        console = open(self.dir / "log" / "console.log", "wb")
        self._console = console
        self.proc = subprocess.Popen(
            [
                "chroot",
                str(self.root),
                "/usr/sbin/asterisk",
                "-f",  # foreground: this process is Asterisk, we own its lifetime
                "-n",
                "-C",
                f"{self.chroot_dir}/etc/asterisk.conf",
            ],
            stdin=subprocess.DEVNULL,
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            self._wait_ready()
            self._check_transports()
        except BaseException:
            self.stop()
            raise
        return AsteriskInfo(
            host=GATEWAY_IP,
            ami_port=self.ami_port,
            ami_username=self.ami_username,
            ami_secret=self.ami_secret,
            sip_port=self.sip_port,
            world_port=self.world_port,
            trunk=self.settings().trunk_name,
            recordings_dir=self.dir / "recordings",
            recordings_dir_in_chroot=f"{self.chroot_dir}/recordings",
            version=self.version,
            log_file=self.dir / "log" / "messages.log",
        )

    def _check_transports(self) -> None:
        """Fail when a SIP transport did not start: Asterisk boots without it, and an
        endpoint that names it sends over another (a TCP trunk's INVITE went out over
        UDP when its port was taken)."""
        try:
            log = (self.dir / "log" / "messages.log").read_text(errors="replace")
        except OSError:
            return
        failed = [line for line in log.splitlines() if "could not be started" in line]
        if failed:
            raise AsteriskHarnessError(
                "a SIP transport did not start:\n" + "\n".join(failed) + "\n" + self.log_tail()
            )

    def log_tail(self, lines: int = 40) -> str:
        """The end of Asterisk's own log and console output, for failure messages."""
        out = []
        for name in ("console.log", "messages.log"):
            path = self.dir / "log" / name
            if path.exists():
                text = path.read_text(errors="replace").splitlines()[-lines:]
                out.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(out)

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        last_error = "no connection yet"
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AsteriskHarnessError(
                    f"Asterisk exited with {self.proc.returncode} while starting\n"
                    + self.log_tail()
                )
            try:
                if self._ami_login_and_booted(deadline):
                    return
            except OSError as exc:
                last_error = str(exc)
            time.sleep(0.2)
        raise AsteriskHarnessError(
            f"Asterisk AMI not ready on {GATEWAY_IP}:{self.ami_port} within "
            f"{START_TIMEOUT_S:.0f}s ({last_error})\n" + self.log_tail()
        )

    def _ami_login_and_booted(self, deadline: float) -> bool:
        with socket.create_connection((GATEWAY_IP, self.ami_port), timeout=2) as s:
            s.settimeout(max(0.5, deadline - time.monotonic()))
            buf = b""
            while b"\r\n" not in buf:
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            s.sendall(
                (
                    "Action: Login\r\nActionID: ready\r\n"
                    f"Username: {self.ami_username}\r\nSecret: {self.ami_secret}\r\n\r\n"
                ).encode()
            )
            # FullyBooted is sent on login once the startup has finished loading modules.
            while b"Event: FullyBooted" not in buf:
                if b"Response: Error" in buf:
                    raise AsteriskHarnessError("AMI refused the test login:\n" + buf.decode())
                chunk = s.recv(4096)
                if not chunk:
                    return False
                buf += chunk
            s.sendall(b"Action: Logoff\r\n\r\n")
            return True

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period; remove the session directory."""
        proc, self.proc = self.proc, None
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=STOP_TIMEOUT_S)
        if self._console is not None:
            self._console.close()  # type: ignore[attr-defined]
            self._console = None
        if os.environ.get("MINYI_KEEP_ASTERISK_SESSION") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)


class SitePbx(AsteriskProcess):
    """A site's own PBX that the gateway joins with ``mode = "include"``.

    The site has its own SIP transport, carrier trunk (``site-trunk``, to the outside
    world), extensions 1001 and 1002 (ringing the world's agent phones agent1, agent2),
    a dialplan that routes the carrier's calls to DID 5550100 to extension 1002 using a
    global of its own, and an admin AMI user. The gateway's rendered files are added the
    way an operator adds them: into ``etc/minyi/`` and ``#include``d from the site's
    extensions.conf, queues.conf and manager.conf. Unit A's queue rings extension 1001.
    """

    TRUNK = "site-trunk"
    DID = "5550100"
    SITE_GLOBAL = "county-pbx"
    AGENT = "1001"

    def __init__(self, root: Path, version: str, agent_talk_loops: int = 20) -> None:
        super().__init__(root, version, agent_count=2, agent_talk_loops=agent_talk_loops)
        self.admin_username = "site-admin"
        self.admin_secret = secrets.token_hex(12)

    def settings(self) -> AsteriskSettings:
        """The gateway's ``[dialer.asterisk]`` for this site: mode include."""
        return AsteriskSettings(
            mode="include",
            ami_username=self.ami_username,
            ami_secret=self.ami_secret,
            ami_port=self.ami_port,
            recordings_dir=f"{self.chroot_dir}/recordings",
            trunk_name=self.TRUNK,  # only for AsteriskInfo.trunk: include mode renders none
            agents=(AgentPhone(self.AGENT, interface=f"PJSIP/{self.AGENT}"),),
            units=(UnitQueue(UNIT_A, (self.AGENT,)),),
            agent_ring_s=8,
            queue_timeout_s=30,
            reason_silence_s=0,
            agents_log_in=False,  # extension 1001 is always unit A's member
        )

    def rendered(self) -> dict[str, str]:
        """What ``minyi asterisk render`` writes for this site."""
        return asterisk_conf.render(self.settings())

    def _pbx_files(self) -> dict[str, str]:
        settings = self.settings()
        minyi = self.dir / "etc" / "minyi"
        minyi.mkdir(parents=True, exist_ok=True)
        for name, text in self.rendered().items():
            (minyi / name).write_text(text, encoding="utf-8")
        world_pjsip, world_ext = self._world(settings)
        sip, world = f"{GATEWAY_IP}:{self.sip_port}", f"{WORLD_IP}:{self.world_port}"
        phone = (
            "type=endpoint\ntransport=site-udp\ndisallow=all\nallow=alaw,ulaw\n"
            "direct_media=no\nrtp_symmetric=yes\ndtmf_mode=rfc4733\n"
            f"media_address={GATEWAY_IP}\nbind_rtp_to_media_address=yes\n"
        )
        pjsip = (
            "; the site's own PBX (devstack SitePbx)\n"
            "[global]\ntype=global\nendpoint_identifier_order=ip,username\n\n"
            f"[site-udp]\ntype=transport\nprotocol=udp\nbind={sip}\n\n"
            f"[site-phone](!)\n{phone}context=from-internal\n\n"
            f"[1001](site-phone)\naors=1001\n[1001]\ntype=aor\ncontact=sip:agent1@{world}\n\n"
            f"[1002](site-phone)\naors=1002\n[1002]\ntype=aor\ncontact=sip:agent2@{world}\n\n"
            f"[{self.TRUNK}](site-phone)\ncontext=from-trunk\naors={self.TRUNK}\n"
            f"[{self.TRUNK}]\ntype=aor\ncontact=sip:{world}\n"
            f"[{self.TRUNK}]\ntype=identify\nendpoint={self.TRUNK}\nmatch={WORLD_IP}\n\n"
            "; the carrier's side of the site's trunk: how the world calls the site\n"
            "[world-to-site]\ntype=endpoint\ntransport=world-udp\ncontext=minyi-world\n"
            "disallow=all\nallow=alaw,ulaw\ndirect_media=no\naors=world-to-site\n"
            f"[world-to-site]\ntype=aor\ncontact=sip:{sip}\n"
        )
        extensions = (
            "[general]\nstatic=yes\nwriteprotect=no\nclearglobalvars=no\n\n"
            f"[globals]\nSITE_NAME={self.SITE_GLOBAL}\n\n"
            "[from-internal]\nexten => _10XX,1,Dial(PJSIP/${EXTEN},20)\n same => n,Hangup()\n\n"
            f"[from-trunk]\nexten => {self.DID},1,UserEvent(SiteInbound,Did: ${{EXTEN}},"
            "Site: ${SITE_NAME})\n same => n,Dial(PJSIP/1002,20)\n same => n,Hangup()\n\n"
            "; the gateway (minyi asterisk render, mode include)\n"
            "#include minyi/extensions_minyi.conf\n"
        )
        queues = (
            "[general]\npersistentmembers=no\nautofill=yes\n\n#include minyi/queues_minyi.conf\n"
        )
        manager = (
            f"[general]\nenabled=yes\nwebenabled=no\nport={self.ami_port}\n"
            f"bindaddr={GATEWAY_IP}\ndisplayconnects=no\n\n"
            f"[{self.admin_username}]\nsecret={self.admin_secret}\n"
            "deny=0.0.0.0/0.0.0.0\npermit=127.0.0.1/255.255.255.255\nread=all\nwrite=all\n\n"
            "#include minyi/manager_minyi.conf\n"
        )
        return {
            "pjsip.conf": pjsip + world_pjsip + self._world_extra(self.world_pjsip),
            "extensions.conf": extensions + world_ext + self._world_extra(self.world_extensions),
            "queues.conf": queues,
            "manager.conf": manager,
        }


def _reap_stale_sessions(sessions: Path) -> None:
    """Remove session directories whose test process is gone (a killed earlier run)."""
    if not sessions.is_dir():
        return
    for d in sessions.iterdir():
        pid_file = d / "owner.pid"
        try:
            pid = int(pid_file.read_text())
        except (OSError, ValueError):
            continue
        if not Path(f"/proc/{pid}").exists():
            shutil.rmtree(d, ignore_errors=True)


def wav_rms(path: Path) -> float:
    """RMS of a 16-bit PCM WAV (Asterisk's .wav), 0.0 for an empty file, in 0..1."""
    import array
    import math
    import wave

    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: expected 16-bit samples, got {w.getsampwidth() * 8}")
        frames = w.readframes(w.getnframes())
    samples = array.array("h")
    samples.frombytes(frames)
    if not samples:
        return 0.0
    return math.sqrt(sum(x * x for x in samples) / len(samples)) / 32768.0


def wav_seconds(path: Path) -> float:
    """Duration of a WAV file in seconds."""
    import wave

    with wave.open(str(path), "rb") as w:
        return w.getnframes() / float(w.getframerate())


def voice_seconds(name: str) -> float:
    """How long one of the installed voices (scripts/asterisk/make_voices.sh) plays."""
    return wav_seconds(asterisk_home() / "root" / VOICES_IN_CHROOT / f"{name}.wav")
