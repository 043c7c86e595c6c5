#!/bin/sh
# longfn.sh [MAX] FILE...: the functions of C files longer than MAX lines (default 70,
# STYLE.md's "functions you can see whole"), as FILE:LINE LINES SIGNATURE. A function is
# a '{' alone at column 0 to the next '}' at column 0 (this tree's style); its length is the
# lines between them. Exits 1 when it lists any.
#   sh tools/longfn.sh settle/*.c fare/*.c tools/tapsettle.c tools/tapfare.c
max=70
case "${1:-}" in ''|*[!0-9]*) ;; *) max=$1; shift ;; esac
awk -v max="$max" '
FNR == 1 { start = 0 }
/^[a-zA-Z_].*\(/ { sig = $0 }
/^\{/ { start = FNR; name = sig }
/^\}/ && start { n = FNR - start - 1; if (n > max) { printf "%s:%d %d %s\n", FILENAME, start, n, name; found = 1 } start = 0 }
END { exit found }' "$@"
