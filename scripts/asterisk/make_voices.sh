#!/usr/bin/env bash
# Make the prompts and the simulated voices the tests and the demo play, with espeak-ng
# (Mandarin) and sox: 8 kHz, mono, 16-bit signed PCM WAV, which Asterisk's format_wav
# plays to a G.711 call without resampling.
#
#   make_voices.sh CACHE_DIR INSTALL_DIR
#
# Each voice is cached in CACHE_DIR under a name that hashes its text, so a rerun only
# copies; INSTALL_DIR (the chroot's sounds/minyi) gets NAME.wav, replaced atomically so
# an Asterisk playing the old file never reads a half-written one.
set -euo pipefail

CACHE=${1:?usage: make_voices.sh CACHE_DIR INSTALL_DIR}
INSTALL=${2:?usage: make_voices.sh CACHE_DIR INSTALL_DIR}
for tool in espeak-ng sox sha256sum; do
  command -v "$tool" >/dev/null || { echo "make_voices: missing $tool (apt-get install espeak-ng sox)" >&2; exit 1; }
done
mkdir -p "$CACHE" "$INSTALL"

# name | espeak voice | text. Prompts the gateway plays (greeting, IVR), and what the
# simulated citizen and agents say. The complaint and the agent's line are long enough
# that a few seconds of a recorded call are never silence.
VOICES=$(
  cat <<'EOF'
greeting|cmn|您好，这里是民意回访中心，正在为您转接访评员，通话将被录音。
no-agent|cmn|访评员正忙，我们稍后再与您联系，再见。
goodbye|cmn|感谢您的反馈，再见。
ivr-question|cmn|满意请按1，基本满意请按2，不满意请按3。
ivr-invalid|cmn|输入有误，请重新输入。
ivr-reason|cmn|请在提示音后说出原因。
ivr-thanks|cmn|感谢您的评价，再见。
citizen-complaint|cmn|喂，你好。我对上次报警的处理结果不满意，民警到场太慢了，态度也不好，我希望有人能给我一个说法。
citizen-reason|cmn|出警太慢了，等了一个多小时，而且没有人跟我解释原因。
agent-hello|cmn|您好，我是民意回访中心的访评员，请问您对哪方面不满意？请您详细说一说，我们会认真记录。
EOF
)

keep=()
while IFS='|' read -r name voice text; do
  [ -n "$name" ] || continue
  key=$(printf '%s|%s|8000|280|v1' "$voice" "$text" | sha256sum | cut -c1-16)
  cached=$CACHE/$name-$key.wav
  keep+=("$cached")
  if [ ! -s "$cached" ]; then
    raw=$(mktemp "$CACHE/.raw.XXXXXX.wav")
    espeak-ng -v "$voice" -s 280 -w "$raw" "$text"
    # rate/channels/bits of the output file; norm keeps every voice at the same level.
    sox "$raw" -r 8000 -c 1 -b 16 -e signed-integer "$cached.tmp.wav" norm -3
    rm -f "$raw"
    mv "$cached.tmp.wav" "$cached"
    echo "make_voices: made $name"
  fi
  if ! cmp -s "$cached" "$INSTALL/$name.wav"; then
    cp "$cached" "$INSTALL/.$name.wav.tmp"
    mv "$INSTALL/.$name.wav.tmp" "$INSTALL/$name.wav"
  fi
done <<<"$VOICES"

# Drop cached voices whose text changed since they were made.
for f in "$CACHE"/*.wav; do
  [ -e "$f" ] || continue
  case " ${keep[*]} " in *" $f "*) ;; *) rm -f "$f" ;; esac
done
