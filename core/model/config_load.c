/* config_load: the whole front half of the pipeline in one call,
 * file -> load -> config -> validate (-> graph cycles). */
#include "model/config.h"
#include "model/validate.h"

int er_config_from_doc(const struct er_doc *doc, const char *path,
                       const struct er_config_opts *opts, struct er_config **ret_config,
                       struct er_errs *errs)
{
        struct er_config *c = NULL;
        int r;

        r = er_config_build_partial(doc, path, opts, &c, errs);
        if (c && er_validate(c, errs) < 0 && r == 0)
                r = -ER_ECONFIG;
        if (r < 0)
                er_config_free(c);
        else
                *ret_config = c;
        er_errs_sort(errs);
        return r;
}

int er_config_load(const char *path, const struct er_config_opts *opts,
                   struct er_config **ret_config, struct er_errs *errs)
{
        struct er_doc *doc = NULL;
        int r;

        r = er_load_file(path, NULL, &doc, errs);
        if (r < 0) {
                er_errs_sort(errs);
                return r;
        }
        r = er_config_from_doc(doc, path, opts, ret_config, errs);
        er_doc_free(doc);
        return r;
}
