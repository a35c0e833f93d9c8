/* hfield: which header an HTTP parser's callbacks are in; see hfield.h. */
#include "base/hfield.h"

#include <string.h>
#include <strings.h>

void er_hfield_reset(struct er_hfield *h)
{
        h->len = 0;
        h->too_long = h->in_value = false;
}

void er_hfield_name(struct er_hfield *h, const char *at, size_t len)
{
        if (h->in_value)
                er_hfield_reset(h); /* a new header begins */
        if (h->too_long || len > sizeof(h->name) - h->len) {
                h->too_long = true;
                return;
        }
        memcpy(h->name + h->len, at, len);
        h->len += len;
}

bool er_hfield_value_begins(struct er_hfield *h)
{
        if (h->in_value)
                return false;
        h->in_value = true;
        return true;
}

bool er_hfield_is(const struct er_hfield *h, const char *name)
{
        size_t n = strlen(name);

        return !h->too_long && h->len == n && !strncasecmp(h->name, name, n);
}
