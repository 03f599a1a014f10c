#!/usr/bin/env bash
# Sets up llmrca on a fresh Debian machine: system packages (for the local
# testbed and its tests), the Python package and its extras.
#   bash scripts/setup.sh           # the package + extras testbed, report, causal (for `python -m llmrca reproduce`)
#   bash scripts/setup.sh --test    # plus test tools, system packages, ray, torch (CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
want_test=0
for a in "$@"; do
  case "$a" in
    --test) want_test=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

apt_pkgs=()
if [ "$want_test" = 1 ]; then
  for p in prometheus nginx stress-ng iproute2 iptables procps; do
    dpkg -s "$p" >/dev/null 2>&1 || apt_pkgs+=("$p")
  done
fi
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing Debian packages: ${apt_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${apt_pkgs[@]}" >/dev/null
    # the Debian packages start services we do not want; the testbed runs its own
    for s in prometheus nginx; do
      systemctl stop "$s" >/dev/null 2>&1 || service "$s" stop >/dev/null 2>&1 || true
    done
  else
    echo "setup: missing Debian packages (${apt_pkgs[*]}); tests that need them will be skipped" >&2
  fi
fi

# what `python -m llmrca reproduce` needs beyond the analysis core: the local
# testbed's processes, the report's figures and the PC/FCI/LiNGAM methods
extras="[testbed,report,causal]"
if [ "$want_test" = 1 ]; then
  # torch: the CPU build (an unpinned torch pulls a multi-GB CUDA build)
  "$PY" -m pip install -q "torch==2.13.0" 2>/dev/null || echo "setup: torch 2.13.0 (CPU) not available; torch-based methods will be skipped" >&2
  extras="[test,ray]"  # test includes testbed, report and causal
fi
"$PY" -m pip install -q -e ".$extras"
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
echo "setup: done ($("$PY" -c 'import llmrca; print("llmrca", llmrca.__version__)'))"
