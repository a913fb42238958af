#!/usr/bin/env bash
# Prints where the compatibility tests' Python environment lives (scripts/install-test-deps.sh
# makes it): $ATRIUM_COMPAT_ENV, else /opt/atrium/compat as root, else ~/.cache/atrium/compat.
if [ -n "${ATRIUM_COMPAT_ENV:-}" ]; then echo "$ATRIUM_COMPAT_ENV"
elif [ "$(id -u)" = 0 ]; then echo /opt/atrium/compat
else echo "${XDG_CACHE_HOME:-$HOME/.cache}/atrium/compat"
fi
