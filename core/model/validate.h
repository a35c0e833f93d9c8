/* validate: the rules that span services (SPEC §3, §5.1): every dependency
 * names a service, no service depends on itself, `completed` is never asked
 * of a service that cannot complete, users exist and may be switched to, and
 * the dependency graph has no cycle (graph module).  Every error is appended;
 * dependency indexes (er_dep.index) and users (er_service.uid/gid) are
 * resolved on the way. */
#ifndef ER_VALIDATE_H
#define ER_VALIDATE_H

#include "model/config.h"
#include "base/err.h"

int er_validate(struct er_config *config, struct er_errs *errs);

#endif
