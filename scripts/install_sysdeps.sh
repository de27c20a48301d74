#!/usr/bin/env bash
# Installs the Debian packages the test suite, the corpus builder and the baselines use.
# As root it runs apt-get; otherwise it prints the exact command to run.
set -euo pipefail
PKGS=(
  ffmpeg sox                                  # decoding/encoding (Opus, AAC, MP3 via ffmpeg), G.722 corpus
  libvo-amrwbenc0 libopencore-amrwb0          # AMR-WB encoder / decoder (ctypes)
  codec2 libcodec2-1.0 speex libspeex1 lame liblc3-tools opus-tools libopus0
  espeak-ng flite festival festvox-kallpc16k festvox-us-slt-hts   # synthetic speech
  fluidsynth fluid-soundfont-gm               # rendered music
  asterisk-core-sounds-en-g722 asterisk-core-sounds-es-g722 asterisk-core-sounds-fr-g722
  asterisk-core-sounds-en asterisk-core-sounds-es asterisk-core-sounds-fr   # prompt transcripts
  asterisk-moh-opsound-g722                   # real speech and music
  chromium                                    # headless browser test of the listening-test web app
)
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all ${#PKGS[@]} installed"
  exit 0
fi
cmd="apt-get install -y --no-install-recommends ${missing[*]}"
if [ "$(id -u)" -eq 0 ]; then
  echo "installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  $cmd -qq
else
  echo "missing system packages; run as root:"
  echo "  sudo apt-get update && sudo $cmd"
  echo "(tests that need them are skipped)"
fi
