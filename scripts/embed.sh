#!/bin/sh
# embed.sh FILE NAME: prints a C header defining `static const char NAME[]`
# holding FILE's text, so that scripts ship inside the binary.
set -e
echo "/* generated from $1 by scripts/embed.sh; do not edit */"
echo "static const char $2[] ="
sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/"/' -e 's/$/\\n"/' "$1"
echo ";"
