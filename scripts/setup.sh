#!/usr/bin/env bash
# Sets up llmrca on a fresh Debian machine: system packages (for the local
# testbed and its tests), the Python package and its extras.
#   bash scripts/setup.sh           # the package + extras testbed, report, causal (for `python -m llmrca reproduce`)
#   bash scripts/setup.sh --test    # plus test tools, system packages, ray, torch (CPU)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
want_test=0
# progress: each step says what it does and how long it took; pip shows its
# download bars on a terminal and one line per package otherwise
step_no=0
t_start=$SECONDS
step() { step_no=$((step_no + 1)); step_t=$SECONDS; echo "setup: [$step_no] $*"; }
done_step() { echo "setup:     ok ($((SECONDS - step_t)) s)"; }
pip_install() {  # pip's own progress on a terminal; in a log, pip's lines less "already satisfied"
  if [ -t 1 ]; then "$PY" -m pip install "$@"; return; fi
  local rc=0
  "$PY" -m pip install --progress-bar off "$@" 2>&1 | { grep --line-buffered -v '^Requirement already satisfied' || true; } || rc=$?
  return $rc
}
for a in "$@"; do
  case "$a" in
    --test) want_test=1 ;;
    *) echo "usage: $0 [--test]" >&2; exit 2 ;;
  esac
done

apt_pkgs=()
if [ "$want_test" = 1 ]; then
  # chromium: the headless browser that opens REPORT.html in the tests
  for p in prometheus nginx stress-ng iproute2 iptables procps chromium; do
    dpkg -s "$p" >/dev/null 2>&1 || apt_pkgs+=("$p")
  done
fi
if [ "${#apt_pkgs[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    step "apt-get update"
    apt-get update -qq
    done_step
    step "installing Debian packages: ${apt_pkgs[*]} (a few minutes)"
    # one line per package unpacked/set up, so a long install is visibly alive
    rc=0
    apt-get install -y --no-install-recommends "${apt_pkgs[@]}" 2>&1 | { grep --line-buffered -E '^(Unpacking|Setting up|E:|W:) ' || true; } || rc=$?
    [ "$rc" = 0 ] || { echo "setup: apt-get install failed (exit code $rc)" >&2; exit 1; }
    done_step
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
  step "pip: torch 2.13.0, the CPU build (large download)"
  if pip_install "torch==2.13.0"; then
    done_step
  else
    echo "setup: torch 2.13.0 (CPU) not available; torch-based methods will be skipped" >&2
  fi
  extras="[test,ray]"  # test includes testbed, report and causal
fi
step "pip: llmrca$extras and its dependencies"
pip_install -e ".$extras" || { echo "setup: pip install -e .$extras failed (see above)" >&2; exit 1; }
done_step
command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
echo "setup: done in $((SECONDS - t_start)) s ($("$PY" -c 'import llmrca; print("llmrca", llmrca.__version__)'))"
