/* testhook: holds envrun at a named phase, so that a hostile test can
 * signal or kill it there and nowhere else (issue 22), without sleeps.
 *
 * Compiled in only with -DENVRUN_TEST_HOOKS=ON (tests/run's sanitizer
 * build); elsewhere er_test_hold is an empty inline function.  With it:
 *   ENVRUN_TEST_HOLD=PHASE[,PHASE...]  the phases to hold at
 *   ENVRUN_TEST_HOLD_DIR=DIR           two FIFOs the test made: DIR/at, DIR/go
 * At the first occurrence of a listed phase, envrun writes "PHASE PID\n"
 * to DIR/at (blocking until the test reads it), then reads DIR/go to EOF
 * (blocking until the test writes and closes it).  Signals meanwhile stay
 * pending (envrun blocks them and reads a signalfd), so a SIGTERM sent
 * during the hold is seen at exactly that phase.  The variables are
 * removed from envrun's environment at the first call, so services and
 * the test do not inherit them; the detached supervisor (up -d), forked,
 * keeps the list and holds at the phases it reaches, naming its own pid.
 *
 * Phases: "loaded" (the file read, nothing started), "starting" (the first
 * service's process created), "waiting" (a service started, waiting for
 * its readiness), "test" (the test command running), "stopping" (the
 * first stop signal sent). */
#ifndef ER_TESTHOOK_H
#define ER_TESTHOOK_H

#ifdef ENVRUN_TEST_HOOKS
void er_test_hold(const char *phase);
#else
static inline void er_test_hold(const char *phase)
{
        (void)phase;
}
#endif

#endif
