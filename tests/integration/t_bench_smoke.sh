#!/usr/bin/env bash
# The benchmark scripts must not rot: run each in its smoke mode (a handful
# of runs, no timing assertions) against the release build.
. "$(dirname "$0")/lib.sh"
expect_success "bench validate --smoke" bash "$ENVRUN_SRC/tests/bench/validate.sh" --smoke "$ENVRUN_RELEASE"
expect_success "bench latency --smoke" bash "$ENVRUN_SRC/tests/bench/latency.sh" --smoke "$ENVRUN_RELEASE" "$ENVRUN_BUILD/tests/testsvc"
expect_success "bench memory --smoke" bash "$ENVRUN_SRC/tests/bench/memory.sh" --smoke "$ENVRUN_RELEASE" "$ENVRUN_BUILD/tests/testsvc"
expect_success "bench output --smoke" bash "$ENVRUN_SRC/tests/bench/output.sh" --smoke "$ENVRUN_RELEASE" "$ENVRUN_BUILD/tests/testsvc"
expect_success "bench exec_overhead --smoke" bash "$ENVRUN_SRC/tests/bench/exec_overhead.sh" --smoke "$ENVRUN_RELEASE" "$ENVRUN_BUILD/tests/testsvc"
expect_success "bench callgrind --smoke" bash "$ENVRUN_SRC/tests/bench/callgrind.sh" --smoke "$ENVRUN_RELEASE" "$ENVRUN_BUILD/tests/testsvc"
expect_success "bench phases --smoke" bash "$ENVRUN_SRC/tests/bench/phases.sh" --smoke "$ENVRUN_RELEASE" "$ENVRUN_BUILD/tests/testsvc"
expect_success "bench containment --smoke" bash "$ENVRUN_SRC/tests/bench/containment.sh" --smoke "$ENVRUN_RELEASE" "$ENVRUN_BUILD/tests/testsvc"
expect_success "bench compare --smoke" bash "$ENVRUN_SRC/tests/bench/compare.sh" --smoke "$ENVRUN_RELEASE" "$ENVRUN_RELEASE" "$ENVRUN_BUILD/tests/testsvc"
expect_success "bench syscalls --smoke" bash "$ENVRUN_SRC/tests/bench/syscalls.sh" --smoke "$ENVRUN_RELEASE" "$ENVRUN_BUILD/tests/testsvc"
expect_success "bench goals --smoke" bash "$ENVRUN_SRC/tests/bench/goals.sh" --smoke "$ENVRUN_RELEASE" "$ENVRUN_BUILD/tests/testsvc"
expect_success "bench layered --smoke" bash "$ENVRUN_SRC/tests/bench/layered.sh" --smoke "$ENVRUN_RELEASE"
finish
