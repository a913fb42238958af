#!/usr/bin/env bash
# Installs everything the tests need, from Debian's packages and PyPI: PostgreSQL (store tests),
# sqlite3 (the stress tool's end-to-end tests read the hub's file), openssl (the Kubernetes
# client's TLS certificates), JupyterLab, jupyter-server and ipykernel (the real workspaces of the
# end-to-end and browser tests), the unmodified jupyterhub-idle-culler, headless Chromium with its
# WebDriver and selenium (the browser tests). Idempotent: installs only what is missing.
# Run as root (or with sudo) on Debian: scripts/install-test-deps.sh
set -euo pipefail

export DEBIAN_FRONTEND=noninteractive
apt_missing=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || apt_missing+=(postgresql)
command -v sqlite3 >/dev/null 2>&1 || apt_missing+=(sqlite3)
command -v openssl >/dev/null 2>&1 || apt_missing+=(openssl)
command -v chromium >/dev/null 2>&1 || apt_missing+=(chromium)
command -v chromedriver >/dev/null 2>&1 || apt_missing+=(chromium-driver)
/usr/bin/python3 -c "import ensurepip, venv" >/dev/null 2>&1 || apt_missing+=(python3-venv)
command -v useradd >/dev/null 2>&1 || apt_missing+=(passwd)
if [ "${#apt_missing[@]}" -gt 0 ]; then
  echo "installing from Debian: ${apt_missing[*]}"
  apt-get update -qq
  apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

pip_missing=()
command -v jupyter-lab >/dev/null 2>&1 || pip_missing+=(jupyterlab)
command -v jupyter-server >/dev/null 2>&1 || pip_missing+=(jupyter-server)
python3 -c "import ipykernel" >/dev/null 2>&1 || pip_missing+=(ipykernel)
python3 -c "import jupyterhub_idle_culler" >/dev/null 2>&1 || pip_missing+=(jupyterhub-idle-culler)
python3 -c "import selenium" >/dev/null 2>&1 || pip_missing+=(selenium)
if [ "${#pip_missing[@]}" -gt 0 ]; then
  echo "installing from PyPI: ${pip_missing[*]}"
  # The Python here is the machine's own (pyenv, or a virtual environment); on Debian's system
  # Python, run this inside a virtual environment instead (PEP 668).
  python3 -m pip install -q --disable-pip-version-check "${pip_missing[@]}"
  hash -r
fi
# As root the hub runs each workspace as its student's own account (local.isolation:
# system_users), and those accounts cannot enter root's home (pyenv): Jupyter goes into the
# environment the hub itself would make, /opt/atrium/jupyter, from Debian's Python.
if [ "$(id -u)" = 0 ]; then
  env=/opt/atrium/jupyter
  if ! "$env/bin/python" -c "import jupyterlab, jupyter_server, ipykernel" >/dev/null 2>&1; then
    echo "installing JupyterLab into $env (for workspaces run as students' accounts)"
    /usr/bin/python3 -m venv "$env"
    "$env/bin/pip" install -q --disable-pip-version-check jupyterlab jupyter-server ipykernel
  fi
fi
# JupyterHub's own tools, unmodified, in an environment of their own (tests/compat): the
# `jupyterhub` package 6.1.1 (its metrics are the contract of /hub/metrics), IBM's
# hub-stress-test.py's needs (requests with urllib3<2, which the browser tests' selenium cannot
# share), jupyterhub-idle-culler and pytest.
compat_env=$("$(dirname "$0")/compat-env.sh")
if ! "$compat_env/bin/python" -c "import jupyterhub, urllib3, requests, pytest, jupyterhub_idle_culler, sys; sys.exit(jupyterhub.__version__ != '6.1.1' or not urllib3.__version__.startswith('1.'))" >/dev/null 2>&1; then
  echo "installing JupyterHub 6.1.1's tools into $compat_env (the compatibility tests)"
  mkdir -p "$(dirname "$compat_env")"
  /usr/bin/python3 -m venv "$compat_env"
  "$compat_env/bin/pip" install -q --disable-pip-version-check "jupyterhub==6.1.1" "urllib3<2" requests pytest jupyterhub-idle-culler
fi
echo "test prerequisites installed"
