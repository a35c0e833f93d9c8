/* timeline: the run drawn as a Gantt chart (SPEC §6, `exec --timeline
 * FILE.svg`), like `systemd-analyze plot`.  It reads only an er_report.
 *
 * One row per service in start order: its name, a bar from spawn to stop
 * (amber while starting, green once ready; red shades when the service
 * failed), and a note (time to ready, uptime, failed readiness attempts,
 * restarts, or the error class and message).  A service that never started
 * has a row with no bar.  Then the test command's row (blue, red when it
 * failed), a time axis in ms/s/min at the top and bottom, dashed lines where
 * the test started and ended, and a legend.
 *
 * The SVG is self-contained (an inline <style>, generic font families, no
 * scripts, no external references) and every string from the report is
 * XML-escaped, with invalid UTF-8 and characters XML forbids shown as
 * U+FFFD.  Bars are <rect class="bar service ok|failed"> and
 * <rect class="bar test ok|failed">, each with data-name; the starting phase
 * is drawn over a service's bar as <rect class="phase starting">. */
#ifndef ER_TIMELINE_H
#define ER_TIMELINE_H

#include <stddef.h>

#include "report/report.h"

/* Writes the SVG into a malloc'd NUL-terminated buffer (*ret, and its
 * length in *ret_len when ret_len is not NULL).  Returns 0 or -ENOMEM;
 * *ret and *ret_len are written only on success. */
int er_timeline_svg(const struct er_report *r, char **ret, size_t *ret_len);

#endif
