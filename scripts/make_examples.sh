#!/usr/bin/env bash
# Recreates examples/*.flac from Debian's asterisk sound packages (needs ffmpeg).
set -euo pipefail
cd "$(dirname "$0")/.."
ffmpeg -v error -y -f g722 -i /usr/share/asterisk/sounds/en_US_f_Allison/demo-congrats.g722 -t 8 -sample_fmt s16 examples/speech.flac
ffmpeg -v error -y -f g722 -i /usr/share/asterisk/moh/macroform-the_simplicity.g722 -ss 30 -t 8 -sample_fmt s16 examples/music.flac
