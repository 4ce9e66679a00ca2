#!/usr/bin/env bash
# Installs the pinned guest toolchains for Python and JavaScript sinks into
# target/tools (idempotent; fast when already there):
#   componentize-py 0.25.1 (PyPI) in a virtualenv,
#   @bytecodealliance/componentize-js 0.23.0 (npm). `jco componentize` does
#   not work offline; the componentize-js CLI does.
# Prints nothing on success unless it installed something.
set -euo pipefail
cd "$(dirname "$0")/.."
tools=target/tools
mkdir -p "$tools"

if [ ! -x "$tools/venv/bin/componentize-py" ] || ! "$tools/venv/bin/componentize-py" --version 2>/dev/null | grep -q "0.25.1"; then
  echo "installing componentize-py 0.25.1 into $tools/venv" >&2
  python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install --quiet --disable-pip-version-check componentize-py==0.25.1
fi

if [ ! -x "$tools/node/node_modules/.bin/componentize-js" ]; then
  echo "installing @bytecodealliance/componentize-js 0.23.0 into $tools/node" >&2
  mkdir -p "$tools/node"
  npm install --silent --no-audit --no-fund --prefix "$tools/node" @bytecodealliance/componentize-js@0.23.0 >&2
fi
