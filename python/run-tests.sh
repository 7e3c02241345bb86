#!/bin/sh
# Runs the binding's pytest suite against a build tree; called by meson
# (python/meson.build) as: run-tests.sh SRCDIR BUILDDIR SANITIZE
# Exit 77 (meson: skipped) with the reason printed when the suite cannot
# run here.
src=$1 build=$2 sanitize=$3
py=/usr/bin/python3
if [ -n "$sanitize" ] && [ "$sanitize" != none ]; then
	echo "SKIP: the Python binding loads libipc.so into an uninstrumented" \
	     "interpreter; not run in a $sanitize build"
	exit 77
fi
if ! [ -x "$py" ]; then
	echo "SKIP: $py not found (Debian: python3)"
	exit 77
fi
for mod in cffi pytest; do
	if ! "$py" -c "import $mod" 2>/dev/null; then
		echo "SKIP: $py has no module $mod (Debian: python3-$mod)"
		exit 77
	fi
done
export PYTHONPATH="$src/python${PYTHONPATH:+:$PYTHONPATH}"
export LIBIPC_LIBRARY="$build/src/libipc.so"
export LIBIPC_BUILD="$build"
cd "$build" || exit 1
exec "$py" -m pytest -q -p no:cacheprovider "$src/python/tests"
