/* dump: see dump.h. */
#include "model/dump.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "model/check.h"
#include "base/buf.h"
#include "base/units.h"

static json_t *str_array(char *const *v, size_t n)
{
        json_t *a = json_array();
        for (size_t i = 0; a && i < n; i++)
                json_array_append_new(a, json_string(v[i]));
        return a;
}

/* The env lists merged, later entries winning (as the engine applies them). */
static json_t *env3(const struct er_envlist *a, const struct er_envlist *b,
                    const struct er_envlist *c)
{
        json_t *o = json_object();
        const struct er_envlist *ls[3] = {a, b, c};
        for (size_t k = 0; o && k < 3; k++)
                for (size_t i = 0; ls[k] && i < ls[k]->n; i++)
                        json_object_set_new(o, ls[k]->v[i].name, json_string(ls[k]->v[i].value));
        return o;
}

static json_t *duration(uint64_t us)
{
        char buf[64];
        er_duration_format(us, buf, sizeof(buf));
        return json_string(buf);
}

static json_t *size(uint64_t bytes)
{
        char buf[64];
        er_size_format(bytes, buf, sizeof(buf));
        return json_string(buf);
}

static json_t *signame(int sig)
{
        char buf[32];
        er_signal_format(sig, buf, sizeof(buf));
        return json_string(buf);
}

static json_t *codes(const struct er_codes *c)
{
        json_t *a = json_array();
        for (unsigned i = 0; a && i < 256; i++)
                if (er_codes_has(c, i))
                        json_array_append_new(a, json_integer(i));
        return a;
}

/* command, shell, cwd of a service or the test */
static void cmd_fields(json_t *o, const struct er_cmd *cmd)
{
        if (cmd->shell)
                json_object_set_new(o, "command", json_string(cmd->argv[2]));
        else
                json_object_set_new(o, "command", str_array(cmd->argv, cmd->argc));
        json_object_set_new(o, "shell", json_boolean(cmd->shell));
        json_object_set_new(o, "cwd", json_string(cmd->cwd));
}

static json_t *service(const struct er_config *c, const struct er_service *s)
{
        json_t *o = json_object(), *ready, *deps, *limits;

        if (!o)
                return NULL;
        cmd_fields(o, &s->cmd);
        json_object_set_new(o, "env", env3(&c->env_file, &c->env, &s->env));
        if (s->user)
                json_object_set_new(o, "user", json_string(s->user));
        json_object_set_new(o, "timeout", duration(s->timeout_us));
        json_object_set_new(o, "stop_timeout", duration(s->stop_timeout_us));
        json_object_set_new(o, "sig_stop", signame(s->sig_stop));
        json_object_set_new(o, "sig_kill", signame(s->sig_kill));
        json_object_set_new(o, "ok_exit", codes(&s->ok_exit));
        ready = json_array();
        for (size_t i = 0; i < s->n_checks; i++)
                json_array_append_new(ready, er_check_dump(s->checks[i]));
        json_object_set_new(o, "ready", ready);
        deps = json_object();
        for (size_t i = 0; i < s->n_deps; i++) {
                json_t *d = json_object();
                json_object_set_new(d, "condition", json_string(er_cond_name(s->deps[i].cond)));
                json_object_set_new(deps, s->deps[i].name, d);
        }
        json_object_set_new(o, "depends_on", deps);
        json_object_set_new(o, "restart", json_string(er_restart_name(s->restart)));
        json_object_set_new(o, "max_restarts", json_integer(s->max_restarts));
        limits = json_object();
        if (s->limits.memory)
                json_object_set_new(limits, "memory", size(s->limits.memory));
        if (s->limits.pids)
                json_object_set_new(limits, "pids", json_integer((json_int_t)s->limits.pids));
        if (s->limits.cpu_time_us)
                json_object_set_new(limits, "cpu_time", duration(s->limits.cpu_time_us));
        json_object_set_new(o, "limits", limits);
        json_t *log = json_object();
        json_object_set_new(log, "max_size", size(s->log_max_size));
        json_object_set_new(o, "log", log);
        return o;
}

json_t *er_dump_config(const struct er_config *c)
{
        json_t *o = json_object(), *svcs, *ports;

        if (!o)
                return NULL;
        json_object_set_new(o, "name", json_string(c->project));
        json_object_set_new(o, "env", env3(&c->env_file, &c->env, NULL));
        svcs = json_object();
        for (size_t i = 0; i < c->n_services; i++)
                json_object_set_new(svcs, c->services[i].name, service(c, &c->services[i]));
        json_object_set_new(o, "services", svcs);
        ports = json_array();
        for (size_t i = 0; i < c->n_ports; i++)
                json_array_append_new(ports, json_string(c->ports[i].name));
        json_object_set_new(o, "ports", ports);
        if (c->test.present) {
                json_t *t = json_object();
                cmd_fields(t, &c->test.cmd);
                json_object_set_new(t, "env", env3(&c->env_file, &c->env, &c->test.env));
                if (c->test.timeout_us)
                        json_object_set_new(t, "timeout", duration(c->test.timeout_us));
                json_object_set_new(o, "test", t);
        }
        return o;
}

/* --- YAML ------------------------------------------------------------- */

/* libyaml's output handler: 1 on success, 0 on failure. */
static int write_handler(void *data, unsigned char *buffer, size_t size)
{
        return er_buf_put(data, buffer, size) == 0;
}

/* A string that a YAML 1.2 reader would type as something else (a number,
 * a boolean, null) or that YAML 1.1 readers would (yes, no, on, off) is
 * quoted; so is anything libyaml's emitter cannot write plain. */
static bool needs_quotes(const char *s)
{
        static const char *const words[] = {"",     "~",    "null", "Null", "NULL", "true",
                                            "True", "TRUE", "false", "False", "FALSE", "yes",
                                            "Yes",  "YES",  "no",   "No",   "NO",   "on",
                                            "On",   "ON",   "off",  "Off",  "OFF",  "y", "n",
                                            "Y",    "N"};
        char *end;
        for (size_t i = 0; i < sizeof(words) / sizeof(words[0]); i++)
                if (!strcmp(s, words[i]))
                        return true;
        strtod(s, &end);
        if (end != s && !*end)
                return true;
        return strpbrk(s, ":#{}[],&*!|>'\"%@`\\\n\t") != NULL || ((s[0] == '-' || s[0] == '?') && (s[1] == ' ' || !s[1])) ||
               s[0] == ' ' || s[strlen(s) - 1] == ' ' || (s[0] == '0' && (s[1] == 'x' || s[1] == 'o'));
}

static int emit(yaml_emitter_t *e, const json_t *v)
{
        yaml_event_t ev;
        char buf[64];
        const char *text = NULL;
        yaml_scalar_style_t style = YAML_PLAIN_SCALAR_STYLE;

        switch (json_typeof(v)) {
        case JSON_OBJECT: {
                const char *key;
                json_t *val;
                if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1,
                                                         json_object_size(v) ? YAML_BLOCK_MAPPING_STYLE
                                                                              : YAML_FLOW_MAPPING_STYLE) ||
                    !yaml_emitter_emit(e, &ev))
                        return -ENOMEM;
                json_object_foreach((json_t *)v, key, val) {
                        json_t *k = json_string(key);
                        int r = k ? emit(e, k) : -ENOMEM;
                        json_decref(k);
                        if (r < 0 || emit(e, val) < 0)
                                return -ENOMEM;
                }
                if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(e, &ev))
                        return -ENOMEM;
                return 0;
        }
        case JSON_ARRAY: {
                size_t i;
                json_t *val;
                if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1,
                                                          json_array_size(v) ? YAML_BLOCK_SEQUENCE_STYLE
                                                                             : YAML_FLOW_SEQUENCE_STYLE) ||
                    !yaml_emitter_emit(e, &ev))
                        return -ENOMEM;
                json_array_foreach((json_t *)v, i, val) if (emit(e, val) < 0) return -ENOMEM;
                if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(e, &ev))
                        return -ENOMEM;
                return 0;
        }
        case JSON_STRING:
                text = json_string_value(v);
                if (needs_quotes(text))
                        style = YAML_DOUBLE_QUOTED_SCALAR_STYLE;
                break;
        case JSON_INTEGER:
                snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT, json_integer_value(v));
                text = buf;
                break;
        case JSON_REAL:
                snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
                text = buf;
                break;
        case JSON_TRUE:
                text = "true";
                break;
        case JSON_FALSE:
                text = "false";
                break;
        case JSON_NULL:
                text = "null";
                break;
        }
        if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)text, (int)strlen(text), 1,
                                          1, style) ||
            !yaml_emitter_emit(e, &ev))
                return -ENOMEM;
        return 0;
}

int er_dump_yaml(const json_t *value, char **ret_buf, size_t *ret_len)
{
        yaml_emitter_t e;
        yaml_event_t ev;
        struct er_buf o = {0};
        int r = -ENOMEM;

        if (!yaml_emitter_initialize(&e))
                return -ENOMEM;
        yaml_emitter_set_output(&e, write_handler, &o);
        yaml_emitter_set_unicode(&e, 1);
        yaml_emitter_set_width(&e, -1);
        yaml_emitter_set_indent(&e, 2);
        if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) ||
            !yaml_emitter_emit(&e, &ev) ||
            !yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) ||
            !yaml_emitter_emit(&e, &ev))
                goto out;
        if (emit(&e, value) < 0)
                goto out;
        if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(&e, &ev) ||
            !yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(&e, &ev) ||
            !yaml_emitter_flush(&e))
                goto out;
        r = er_buf_finish(&o, ret_buf, ret_len);
out:
        yaml_emitter_delete(&e);
        er_buf_fini(&o);
        return r;
}
