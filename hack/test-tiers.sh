#!/usr/bin/env bash
# `make test`'s tiers after `make check`, as pytest runs side by side:
#   - in the background, the kind tier (`pytest -m kind`), whose kind cluster comes up at once
#     and whose tests mostly wait on it, then the images tier (`pytest -m images`), whose images
#     the kind cluster's bring-up built;
#   - in the foreground, every other tier, fastest first.
# The background runs' output goes to a file, printed when all have ended; the exit status is
# the first failing run's. Extra arguments go to every run (make test PYTEST_ARGS=...).
#   PATH=.venv/bin:$PATH hack/test-tiers.sh [pytest args]
# KUBETUNE_KIND_BESIDE=0 runs them one after the other instead (the kind tier, then images, last).
set -uo pipefail
folder=$(mktemp -d "${TMPDIR:-/tmp}/kubetune-kind-tier.XXXXXX")
log=$folder/pytest.log
# pytest's "no tests collected" (5) is no failure here: arguments may select one run's tests only.
passed() { [[ $1 == 0 || $1 == 5 ]]; }
# The first failing status of those given; 5 only when every run collected nothing.
combined() {
  local status
  for status in "$@"; do passed "$status" || return "$status"; done
  for status in "$@"; do [[ $status == 5 ]] || return 0; done
  return 5
}
rest_run() { pytest -m "not unit and not kind and not images" "$@"; }
beside_run() {
  local kind images
  # Base temporary folders of their own, apart from the foreground run's, kept when a run fails.
  pytest -m kind --basetemp "$folder/kind" "$@" </dev/null; kind=$?
  pytest -m images --basetemp "$folder/images" "$@" </dev/null; images=$?
  combined "$kind" "$images"
}

if [[ ${KUBETUNE_KIND_BESIDE:-1} == 0 ]]; then
  rest_run "$@"; rest=$?
  beside_run "$@"; beside=$?
else
  echo "[test] the kind and images tiers run beside the others; their output: $log (printed at the end)"
  beside_run "$@" >"$log" 2>&1 &
  pid=$!
  # A background job of a script ignores SIGINT (and so do its pytest runs): stop them with TERM.
  trap 'pkill -TERM -P "$pid"; kill -TERM "$pid" 2>/dev/null; wait "$pid"; exit 130' INT TERM
  rest_run "$@"; rest=$?
  kill -0 "$pid" 2>/dev/null && echo "[test] waiting for the kind and images tiers"
  wait "$pid"; beside=$?
  trap - INT TERM
  echo "==== the kind and images tiers, run beside the others: exit $beside ===="
  cat "$log"
fi
passed "$beside" && rm -rf "$folder"  # a failed run's test folders stay for a look
combined "$rest" "$beside"
