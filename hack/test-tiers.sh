#!/usr/bin/env bash
# `make test`'s tiers after `make check`, as two pytest runs side by side:
#   - the kind tier (`pytest -m kind`): its kind cluster comes up at once and its tests run while
#     the other tiers run. Its time goes mostly to waiting on the cluster and the Docker engine
#     (about two thirds of the CPUs busy when it ran alone);
#   - every other tier (`pytest -m "not unit and not kind"`), fastest first, in the foreground.
# The kind run's output goes to a file, printed when both have ended; the exit status is the
# first failing run's. Extra arguments go to both runs (make test PYTEST_ARGS=...).
#   PATH=.venv/bin:$PATH hack/test-tiers.sh [pytest args]
# KUBETUNE_KIND_BESIDE=0 runs the two one after the other instead (the kind tier last).
set -uo pipefail
folder=$(mktemp -d "${TMPDIR:-/tmp}/kubetune-kind-tier.XXXXXX")
log=$folder/pytest.log
kind_run() {
  # Its own base temporary folder: pytest removes old numbered ones of a run it counts as ended.
  pytest -m kind --basetemp "$folder/tmp" "$@" </dev/null
}
# pytest's "no tests collected" (5) is no failure here: arguments may select one run's tests only.
passed() { [[ $1 == 0 || $1 == 5 ]]; }

if [[ ${KUBETUNE_KIND_BESIDE:-1} == 0 ]]; then
  pytest -m "not unit and not kind" "$@"; rest=$?
  kind_run "$@"; kind=$?
else
  echo "[test] the kind tier runs beside the other tiers; its output: $log (printed at the end)"
  kind_run "$@" >"$log" 2>&1 &
  pid=$!
  # A background job of a script ignores SIGINT: stop it with the foreground run.
  trap 'kill -INT "$pid" 2>/dev/null; wait "$pid"; exit 130' INT TERM
  pytest -m "not unit and not kind" "$@"; rest=$?
  kill -0 "$pid" 2>/dev/null && echo "[test] waiting for the kind tier"
  wait "$pid"; kind=$?
  trap - INT TERM
  echo "==== the kind tier (pytest -m kind), run beside the others: exit $kind ===="
  cat "$log"
fi
passed "$kind" && rm -rf "$folder"  # a failed run's test folders stay for a look
passed "$rest" || exit "$rest"
passed "$kind" || exit "$kind"
[[ $rest == 5 && $kind == 5 ]] && exit 5
exit 0
