/* hfield: which header an HTTP parser's callbacks are in, for decoders
 * that want one header or two by name.  http_parser hands a header's name
 * and value over in pieces, each perhaps split across reads: a name is
 * complete when its value begins, and a value ends when the next name
 * begins.  Used by the control client (Content-Type) and the http check's
 * own client (Location). */
#ifndef ER_HFIELD_H
#define ER_HFIELD_H

#include <stdbool.h>
#include <stddef.h>

#define ER_HFIELD_MAX 16 /* longer names match nothing */

struct er_hfield {
        char name[ER_HFIELD_MAX];
        size_t len;
        bool too_long;
        bool in_value;
};

/* Before a message's headers. */
void er_hfield_reset(struct er_hfield *h);
/* A piece of a header's name (on_header_field). */
void er_hfield_name(struct er_hfield *h, const char *at, size_t len);
/* A piece of its value (on_header_value): true for the first piece, when
 * the name is complete and er_hfield_is may be asked. */
bool er_hfield_value_begins(struct er_hfield *h);
/* Whether the header's name is `name`, in any case. */
bool er_hfield_is(const struct er_hfield *h, const char *name);

#endif
