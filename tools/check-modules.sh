#!/bin/sh
# check-modules.sh ROOT - check the includes of the tree at ROOT against the
# module graph its Makefile declares (make print-modules: "module: deps |
# public header", modules in order, lowest first, then the program folders).
#
# Fails, naming file and line, when a file of a module or program folder
#   - includes a header of a module its folder does not declare,
#   - includes another module's header other than its public one (its door),
# and when a module declares a module that does not come before it (above
# it, or itself: the graph must point downwards, so it has no cycles).
# Folders outside the graph (tests/, bench/) are not checked.
set -eu
root=${1:-.}
graph=$(make -s --no-print-directory -C "$root" print-modules)
[ -n "$graph" ] || { echo "check-modules: make print-modules printed nothing" >&2; exit 2; }
dirs=$(printf '%s\n' "$graph" | sed 's/:.*//')
files=$(cd "$root" && for d in $dirs; do ls "$d"/*.c "$d"/*.h 2>/dev/null || true; done)
cd "$root"
printf '%s\n' "$graph" | awk -v files="$files" '
	# The graph: order, declared dependencies, public header.
	{
		name = $1; sub(/:$/, "", name)
		order[name] = NR; names[NR] = name
		split($0, halves, "|"); pub = halves[2]; gsub(/ /, "", pub); public[name] = pub
		n = split(halves[1], w, " ")
		for (i = 2; i <= n; i++) deps[name, w[i]] = 1
		for (i = 2; i <= n; i++) dep_list[NR] = dep_list[NR] " " w[i]
	}
	END {
		bad = 0
		for (r = 1; r <= NR; r++) {
			n = split(dep_list[r], w, " ")
			for (i = 1; i <= n; i++)
				if (!(w[i] in order) || order[w[i]] >= r) {
					printf "Makefile: DEPS_%s declares %s, %s\n", names[r], w[i],
					    (w[i] in order) ? "which is not below it" : "which is no module"
					bad++
				}
		}
		nf = split(files, f, "\n")
		for (i = 1; i <= nf; i++) {
			file = f[i]; if (file == "") continue
			mod = file; sub(/\/.*/, "", mod)
			line = 0
			while ((getline text < file) > 0) {
				line++
				if (text !~ /^[ \t]*#[ \t]*include[ \t]*"/) continue
				hdr = text; sub(/^[^"]*"/, "", hdr); sub(/".*/, "", hdr)
				other = hdr; if (other !~ /\//) continue
				sub(/\/.*/, "", other)
				if (other == mod || !(other in order)) continue
				if (!((mod, other) in deps)) {
					printf "%s:%d: includes %s, but DEPS_%s does not declare %s\n", file, line, hdr, mod, other
					bad++
				} else if (hdr != public[other]) {
					printf "%s:%d: includes %s, not the door of %s/ (%s)\n", file, line, hdr, other, public[other]
					bad++
				}
			}
			close(file)
		}
		if (bad) { printf "check-modules: %d include(s) against the module graph\n", bad; exit 1 }
		printf "check-modules: %d files follow the module graph (%d modules and program folders)\n", nf, NR
	}'
