# The module graph: the tree follows it (make check-modules), and the check
# fails, naming file and line, on a copy of the tree with each kind of
# violation planted: an undeclared module, a module above, a module's
# internal header, a dependency that points upwards.
. tests/lib.sh
sh tools/check-modules.sh . >"$T/out" 2>&1 || fail "the tree breaks its module graph: $(cat "$T/out")"
dirs=$(make -s --no-print-directory print-modules | sed 's/:.*//')
plant() { # plant NAME FILE LINE: a copy of the tree with LINE added to FILE must fail the check
	rm -rf "$T/tree" && mkdir "$T/tree"
	cp Makefile "$T/tree/"
	for d in $dirs; do mkdir -p "$T/tree/$d" && cp "$d"/*.[ch] "$T/tree/$d/" 2>/dev/null || true; done
	printf '%s\n' "$3" >>"$T/tree/$2"
	if sh tools/check-modules.sh "$T/tree" >"$T/out" 2>&1; then fail "$1 was not found: $(cat "$T/out")"; fi
	grep -q "$4" "$T/out" || fail "$1: not named as '$4': $(cat "$T/out")"
}
plant "store including the fast path" store/store.c '#include "fastpath/fastpath.h"' \
	'store/store.c:[0-9]*: includes fastpath/fastpath.h, but DEPS_store does not declare fastpath'
plant "the wire codec including fare" proto/proto.c '#include "fare/fare.h"' 'DEPS_proto does not declare fare'
plant "the gateway including settle" gateway/denylist.c '#include "settle/settle.h"' 'DEPS_gateway does not declare settle'
plant "fare including the fast path's internals" fare/run.c '#include "fastpath/internal.h"' 'DEPS_fare does not declare fastpath'
plant "settle including fare's internals" settle/parties.c '#include "fare/internal.h"' 'not the door of fare/'
plant "an upward dependency" Makefile 'DEPS_store += fare' 'DEPS_store declares fare, which is not below it'
echo "ok: the tree follows its module graph, and each planted violation is named"
