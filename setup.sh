#!/usr/bin/env bash
# One-time set-up, safe to re-run: a Python 3.11 venv in .venv with the pinned packages, and
# wkhtmltopdf (for the PDF report) from the system's packages when we are allowed to install it.
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
if ! cmp -s requirements.txt .venv/.requirements.installed; then
    .venv/bin/python -m pip install -q --upgrade pip
    .venv/bin/python -m pip install -q -r requirements.txt
    cp requirements.txt .venv/.requirements.installed
fi
# The workflow's package, editable (this checkout's workflow/cmpt726): importable by the jobs, the tests
# and your own scripts without PYTHONPATH.
if ! .venv/bin/python -c "import cmpt726, pathlib, sys; sys.exit(pathlib.Path(cmpt726.__file__).resolve().parents[1] != pathlib.Path('workflow').resolve())" 2>/dev/null; then
    .venv/bin/python -m pip install -q --no-deps -e .
fi
if ! command -v wkhtmltopdf >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends wkhtmltopdf poppler-utils >/dev/null
    else
        echo "setup.sh: wkhtmltopdf is missing; the HTML report builds, the PDF needs it:" >&2
        echo "  sudo apt-get install wkhtmltopdf   (or: brew install --cask wkhtmltopdf)" >&2
    fi
fi
