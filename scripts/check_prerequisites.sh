#!/usr/bin/env sh
# One clear sentence per missing prerequisite, never a traceback.
#   check_prerequisites.sh [python3]   Python 3.11+ with venv
#   check_prerequisites.sh --node      Node.js 20+ and npm (the browser client's build)
if [ "${1:-}" = "--node" ]; then
  if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "SecureChat's browser client needs Node.js 20 or newer with npm: install them (nodejs.org or NodeSource; Debian 12's own nodejs is 18, too old)." >&2
    exit 1
  fi
  if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) < 20 ? 1 : 0)' 2>/dev/null; then
    echo "SecureChat's browser client needs Node.js 20 or newer; node is $(node --version 2>&1)." >&2
    exit 1
  fi
  exit 0
fi
python=${1:-python3}
if ! command -v "$python" >/dev/null 2>&1; then
  echo "SecureChat needs Python 3.11 or newer: install it (Debian: apt-get install python3 python3-venv)." >&2
  exit 1
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  echo "SecureChat needs Python 3.11 or newer; $python is $("$python" -V 2>&1)." >&2
  exit 1
fi
if ! "$python" -c 'import venv, ensurepip' 2>/dev/null; then
  echo "Python's venv module is missing: install it (Debian: apt-get install python3-venv)." >&2
  exit 1
fi
