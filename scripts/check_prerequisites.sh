#!/usr/bin/env sh
# One clear sentence per missing prerequisite, never a traceback.
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
