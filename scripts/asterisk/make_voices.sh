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
# simulated citizen and agents say. One short sentence each: a test call lasts as long
# as the voices it plays, and the citizen and the agent loop theirs, so a recorded call
# is never silent however long it runs.
VOICES=$(
  cat <<'EOF'
greeting|cmn|民意回访，通话录音。
no-agent|cmn|访评员正忙，我们稍后再与您联系，再见。
goodbye|cmn|感谢您的反馈，再见。
ivr-question|cmn|满意按1，基本满意按2，不满意按3。
ivr-invalid|cmn|输入有误。
ivr-reason|cmn|请说出原因。
ivr-thanks|cmn|感谢评价，再见。
citizen-complaint|cmn|民警到场太慢，态度也不好。
citizen-reason|cmn|出警太慢，没人解释原因。
agent-hello|cmn|您好，哪里不满意？
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
