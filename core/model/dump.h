/* dump: the resolved configuration as data (`envrun config`), and JSON values
 * written as YAML with libyaml's emitter.  The model is turned into a jansson
 * tree once; JSON and YAML output are two serialisations of that tree, so
 * they can never disagree. */
#ifndef ER_DUMP_H
#define ER_DUMP_H

#include <jansson.h>
#include <stddef.h>

#include "model/config.h"

/* A new reference, or NULL on ENOMEM.  Every default is written out;
 * durations and sizes in their shortest exact form ("1m30s", "64M"). */
json_t *er_dump_config(const struct er_config *config);

/* YAML (block style, keys in insertion order) into a malloc'd buffer.
 * Returns 0 or -ENOMEM. */
int er_dump_yaml(const json_t *value, char **ret_buf, size_t *ret_len);

#endif
