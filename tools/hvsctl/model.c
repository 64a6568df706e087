/*
 * hvsctl model: the operator's side of the model registry (docs/design.md section 6, hvs/model_registry.h).
 *   list       every version: status, training range, metrics, decision, which one serves
 *   show       one version's record as JSON (model bytes summarised: lengths and CRC-32)
 *   approve    PENDING_APPROVAL -> APPROVED (re-published with the decision)
 *   reject     -> REJECTED
 *   rollback   the serving version -> ARCHIVED, so the previous approved one serves
 *   export     the decompressed model bytes to a file: UBJ that Python's xgboost.Booster
 *              loads, or an hvs-linear model's text (model_format says which)
 *
 * Which version serves is decided as the registry client decides it: the highest-numbered
 * APPROVED version whose record validates (hvs_registry_load_record: bytes decompress and load,
 * the feature names and feature-set version are this build's, the probe row predicts). hvsctl
 * validates, with its own build, only the versions that question needs (from the top down).
 *
 * Every command reads `models` from the beginning until caught up (no consumer group, nothing
 * committed). A decision is the version's record re-published with the new status, decided_by,
 * decided_at = now and decision_reason (hvs_registry_restatus), keyed "<name>#<version>", and
 * acknowledged by the broker before exit 0. Results are JSON on stdout, messages on stderr.
 * Exit status: 0 done, 1 refused or failed (the message says why), 2 usage.
 */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "hvs/kafka.h"
#include "hvs/model.h"
#include "hvs/model_registry.h"
#include "hvs/serde.h"
#include "hvs/time.h"
#include "hvs/topics.h"
#include "hvsctl.h"

static const char *const help_model =
    "Usage: hvsctl model COMMAND ...\n"
    "\n"
    "The model registry on the `models` topic and the approval workflow: the trainer publishes\n"
    "versions PENDING_APPROVAL (or APPROVED by policy); the highest APPROVED version that\n"
    "validates serves. An operator approves or rejects candidates, rolls back a bad champion\n"
    "(archives it, so the previous approved version serves again) and exports a version for\n"
    "Python.\n"
    "\n"
    "Commands:\n"
    "  list [--name PREFIX]                          every version, one JSON line each\n"
    "  show NAME [--version N]                       one version's record as JSON\n"
    "  approve NAME --version N [--by WHO] [--reason TEXT] [--force]\n"
    "  reject NAME --version N [--by WHO] [--reason TEXT] [--force]\n"
    "  rollback NAME [--by WHO] [--reason TEXT] [--force]\n"
    "  export NAME [--version N] --out FILE          the model's bytes (UBJ or hvs-linear text)\n"
    "\n"
    "Every command takes --timeout S (default 15): how long reading the topic to its end (and\n"
    "having a decision acknowledged) may take, after up to 10 s for the topic's metadata.\n"
    "`hvsctl model COMMAND --help` explains one.\n"
    "Exit status: 0 done, 1 refused or failed (the message says why), 2 usage.";

static const char *const help_list =
    "Usage: hvsctl model list [--name PREFIX] [--timeout S]\n"
    "\n"
    "Prints one JSON line per version of every model (or of the names starting with PREFIX),\n"
    "sorted by name and version: name, version, status, serving, created_at, train_start,\n"
    "train_end (ISO-8601), feature_set_version, features (count), metrics (wape, mape, rmse,\n"
    "mae; null when unknown), decided_by, decision_reason.\n"
    "serving is true for the version that serves: the highest APPROVED one that validates with\n"
    "this build (decompresses, loads, known features, finite prediction on its probe row); an\n"
    "APPROVED version above it that fails carries \"refused\" with the reason.";

static const char *const help_show =
    "Usage: hvsctl model show NAME [--version N] [--timeout S]\n"
    "\n"
    "Prints the record of version N of NAME (default: the serving version, else the highest)\n"
    "as one JSON object: every field of the ModelVersion record (timestamps in ms since the\n"
    "epoch), model_format (\"xgboost-ubj\" or \"hvs-linear\") included, except the model bytes,\n"
    "which are summarised as\n"
    "  \"model_bytes\": {\"compressed_length\", \"length\", \"crc32\"}   (of the decompressed bytes)\n"
    "plus \"key\", \"serving\" and \"validation\" ({\"ok\": true} or the reason it would not serve).";

static const char *const help_approve =
    "Usage: hvsctl model approve NAME --version N [--by WHO] [--reason TEXT] [--force]\n"
    "\n"
    "Re-publishes version N of NAME as APPROVED with decided_by WHO (default $USER, else\n"
    "\"hvsctl\"), decided_at now and decision_reason TEXT; it serves when it is the highest\n"
    "approved version. Refused without --force when N is REJECTED or ARCHIVED, or when its record\n"
    "does not validate (it would not serve). Already APPROVED: nothing is published.\n"
    "Prints {name, version, previous_status, status, decided_by, decided_at, decision_reason,\n"
    "published, serving_before, serving_after}.";

static const char *const help_reject =
    "Usage: hvsctl model reject NAME --version N [--by WHO] [--reason TEXT] [--force]\n"
    "\n"
    "Re-publishes version N of NAME as REJECTED with the decision (decided_by default $USER,\n"
    "else \"hvsctl\"). Refused without --force when N is the serving version (use rollback).\n"
    "Already REJECTED: nothing is published. Prints what approve prints.";

static const char *const help_rollback =
    "Usage: hvsctl model rollback NAME [--by WHO] [--reason TEXT] [--force]\n"
    "\n"
    "Archives the serving version of NAME (re-published ARCHIVED, reason default \"rollback\"),\n"
    "so the previous approved version that validates serves. Refused when nothing serves, and\n"
    "without --force when no approved version is left to serve after it.\n"
    "Prints {name, archived, serving (the version that serves afterwards, null: none), ...}.";

static const char *const help_export =
    "Usage: hvsctl model export NAME [--version N] --out FILE [--timeout S]\n"
    "\n"
    "Writes the decompressed model bytes of version N of NAME (default: the serving version,\n"
    "else the highest) to FILE, after checking that they load with the record's feature count.\n"
    "model_format \"xgboost-ubj\": UBJ; in Python xgboost.Booster(model_file=FILE), columns in\n"
    "the order of \"features\". \"hvs-linear\": the coefficient text (first line \"hvs-linear 1\",\n"
    "then columns, selector, rows and one line per row: selector value, intercept, coefficients).\n"
    "Prints {name, version, status, model_format, file, length, crc32, feature_set_version,\n"
    "features}.";

/* Per registry entry: has this build validated its record (and why not). */
typedef struct check {
    signed char state; /* 0 not tried, 1 validates, -1 refused */
    hvs_err_t why;
} check_t;

typedef struct mctx {
    hvs_app_t *app;
    char cmd[32]; /* "model approve", for messages */
    const char *topic;
    hvs_kafka_conf_t kc;
    hvs_serde_t *serde;
    hvs_registry_t *reg;
    const hvs_model_info_t *v; /* the registry's versions, sorted by name and version */
    size_t n;
    check_t *checks; /* n, parallel to v */
} mctx_t;

typedef struct mopts {
    const char *name; /* NAME, or list's --name PREFIX */
    int version;      /* 0: not given */
    const char *by, *reason, *out;
    bool force;
    long timeout_s;
} mopts_t;

enum {
    O_NAME = 1,    /* a NAME argument (required) */
    O_PREFIX = 2,  /* --name PREFIX */
    O_VERSION = 4, /* --version N */
    O_DECIDE = 8,  /* --by, --reason, --force */
    O_OUT = 16     /* --out FILE */
};

/* 0, or 2 after printing the usage error. */
static int parse_opts(const char *cmd, int argc, char **argv, unsigned allowed, mopts_t *o) {
    *o = (mopts_t){.timeout_s = 15};
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        bool takes_value = strcmp(a, "--name") == 0 || strcmp(a, "--version") == 0 ||
                           strcmp(a, "--by") == 0 || strcmp(a, "--reason") == 0 ||
                           strcmp(a, "--out") == 0 || strcmp(a, "--timeout") == 0;
        bool known = strcmp(a, "--timeout") == 0 ||
                     ((allowed & O_PREFIX) && strcmp(a, "--name") == 0) ||
                     ((allowed & O_VERSION) && strcmp(a, "--version") == 0) ||
                     ((allowed & O_DECIDE) &&
                      (strcmp(a, "--by") == 0 || strcmp(a, "--reason") == 0 ||
                       strcmp(a, "--force") == 0)) ||
                     ((allowed & O_OUT) && strcmp(a, "--out") == 0);
        if (a[0] == '-' && a[1] != '\0') {
            if (!known) {
                fprintf(stderr, "hvsctl %s: unknown option %s (see --help)\n", cmd, a);
                return 2;
            }
            if (takes_value && !v) {
                fprintf(stderr, "hvsctl %s: %s needs a value\n", cmd, a);
                return 2;
            }
            if (strcmp(a, "--force") == 0) {
                o->force = true;
                continue;
            }
            i++;
            if (strcmp(a, "--name") == 0) {
                o->name = v;
            } else if (strcmp(a, "--version") == 0) {
                long x = hvsctl_parse_count(a, v);
                if (x < 1 || x > INT_MAX) {
                    if (x == 0 || x > INT_MAX)
                        fprintf(stderr, "hvsctl %s: --version %s: versions start at 1\n", cmd, v);
                    return 2;
                }
                o->version = (int)x;
            } else if (strcmp(a, "--by") == 0) {
                o->by = v;
            } else if (strcmp(a, "--reason") == 0) {
                o->reason = v;
            } else if (strcmp(a, "--out") == 0) {
                o->out = v;
            } else {
                o->timeout_s = hvsctl_parse_count(a, v);
                if (o->timeout_s < 1 || o->timeout_s > 3600) {
                    if (o->timeout_s >= 0)
                        fprintf(stderr, "hvsctl %s: --timeout %s: 1 to 3600 seconds\n", cmd, v);
                    return 2;
                }
            }
        } else if ((allowed & O_NAME) && !o->name) {
            o->name = a;
        } else {
            fprintf(stderr, "hvsctl %s: unexpected argument \"%s\" (see --help)\n", cmd, a);
            return 2;
        }
    }
    if ((allowed & O_NAME) && (!o->name || !o->name[0])) {
        fprintf(stderr, "hvsctl %s: which model? (NAME, e.g. forecast/global)\n", cmd);
        return 2;
    }
    if ((allowed & O_OUT) && (!o->out || !o->out[0])) {
        fprintf(stderr, "hvsctl %s: --out FILE is required\n", cmd);
        return 2;
    }
    return 0;
}

/* Read the topic to its end (names starting with prefix; NULL all). 0, or 1 with the reason
 * printed. */
static int open_registry(mctx_t *c, const char *prefix, long timeout_s) {
    hvs_err_t err = {0};
    c->topic = hvs_topic_name("models");
    hvs_app_kafka_conf(c->app, &c->kc);
    if (hvs_serde_new(c->app->cfg.schema_registry_url, &c->serde, &err) != 0) {
        fprintf(stderr, "hvsctl %s: %s\n", c->cmd, err.msg);
        return 1;
    }
    hvs_registry_opts_t ro = {.prefix = prefix, .load_models = false};
    if (hvs_registry_new(&c->kc, c->serde, c->topic, &ro, &c->reg, &err) != 0) {
        fprintf(stderr, "hvsctl %s: cannot read topic %s at %s: %s\n", c->cmd, c->topic,
                c->kc.brokers, err.msg);
        return 1;
    }
    hvs_registry_poll(c->reg, (int)(timeout_s * 1000));
    if (!hvs_registry_caught_up(c->reg)) {
        fprintf(stderr,
                "hvsctl %s: topic %s at %s was not read to its end within %ld s "
                "(--timeout)\n",
                c->cmd, c->topic, c->kc.brokers, timeout_s);
        return 1;
    }
    c->v = hvs_registry_versions(c->reg, &c->n);
    c->checks = calloc(c->n ? c->n : 1, sizeof *c->checks);
    if (!c->checks) {
        fprintf(stderr, "hvsctl %s: out of memory for %zu versions\n", c->cmd, c->n);
        return 1;
    }
    return 0;
}

static void close_registry(mctx_t *c) {
    free(c->checks);
    hvs_registry_destroy(c->reg);
    hvs_serde_destroy(c->serde);
}

/* The versions of name: [*lo, *hi) of c->v, empty when unknown. */
static void name_range(const mctx_t *c, const char *name, size_t *lo, size_t *hi) {
    size_t i = 0;
    while (i < c->n && strcmp(c->v[i].name, name) != 0)
        i++;
    *lo = i;
    while (i < c->n && strcmp(c->v[i].name, name) == 0)
        i++;
    *hi = i;
}

/* Does version c->v[i] validate with this build (what the registry checks before serving)? */
static bool validates(mctx_t *c, size_t i) {
    check_t *k = &c->checks[i];
    if (k->state == 0) {
        const hvs_model_info_t *x = &c->v[i];
        hvs_model_ref_t *ref = NULL;
        int rc = x->record
                     ? hvs_registry_load_record(c->serde, x->record, x->record_len, &ref, &k->why)
                     : hvs_err_set(&k->why, HVS_ENOMEM, "oom", "%s v%d: record not kept", x->name,
                                   x->version);
        hvs_registry_release(ref);
        k->state = rc == 0 ? 1 : -1;
    }
    return k->state > 0;
}

/* The version that serves among [lo, hi): the highest APPROVED that validates, with version
 * `ov` taken to have status `ost` (ov 0: none); its index in *at. 0 when none serves. */
static int serving(mctx_t *c, size_t lo, size_t hi, int ov, int ost, size_t *at) {
    for (size_t i = hi; i-- > lo;) {
        int st = c->v[i].version == ov ? ost : (int)c->v[i].status;
        if (st == HVS_MODEL_APPROVED && validates(c, i)) {
            if (at)
                *at = i;
            return c->v[i].version;
        }
    }
    return 0;
}

/* The version NAME [--version N] names: its index, or -1 after printing why. With no N: the
 * serving version, else the highest. */
static long pick(mctx_t *c, const mopts_t *o, size_t *lo, size_t *hi) {
    name_range(c, o->name, lo, hi);
    if (*lo == *hi) {
        fprintf(stderr, "hvsctl %s: no model named \"%s\" on topic %s\n", c->cmd, o->name,
                c->topic);
        return -1;
    }
    size_t at = *hi - 1;
    if (!o->version) {
        serving(c, *lo, *hi, 0, 0, &at);
        return (long)at;
    }
    for (size_t i = *lo; i < *hi; i++)
        if (c->v[i].version == o->version)
            return (long)i;
    char known[256];
    size_t len = 0;
    known[0] = '\0';
    size_t i = *lo;
    for (; i < *hi && len + 16 < sizeof known; i++)
        len += (size_t)snprintf(known + len, sizeof known - len, "%s%d", i > *lo ? ", " : "",
                                c->v[i].version);
    fprintf(stderr, "hvsctl %s: %s has no version %d (versions: %s%s)\n", c->cmd, o->name,
            o->version, known, i < *hi ? ", ..." : "");
    return -1;
}

/* ---- JSON helpers ----------------------------------------------------------------------------- */

static json_t *num_or_null(double d) { return isfinite(d) ? json_real(d) : json_null(); }
static json_t *str_or_null(const char *s) {
    json_t *j = s ? json_string(s) : NULL;
    return j ? j : json_null();
}
static json_t *iso(hvs_ms_t t) {
    char buf[40];
    return json_string(hvs_time_format_iso8601(t, buf, sizeof buf));
}
static json_t *crc_hex(const unsigned char *p, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    for (size_t off = 0; off < n;) { /* crc32 takes uInt lengths */
        uInt step = n - off > (1u << 30) ? (1u << 30) : (uInt)(n - off);
        crc = crc32(crc, p + off, step);
        off += step;
    }
    char hex[16];
    snprintf(hex, sizeof hex, "%08lx", (unsigned long)crc);
    return json_string(hex);
}

/* Print j as one line on stdout and free it; 0, or 1 when it could not be printed. */
static int emit(const mctx_t *c, json_t *j) {
    char *text = j ? json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
    int rc = 0;
    if (!text || puts(text) < 0 || fflush(stdout) != 0) {
        fprintf(stderr, "hvsctl %s: could not print the result\n", c->cmd);
        rc = 1;
    }
    free(text);
    json_decref(j);
    return rc;
}

/* ---- list ------------------------------------------------------------------------------------- */

static json_t *info_json(mctx_t *c, size_t i, bool is_serving) {
    const hvs_model_info_t *x = &c->v[i];
    json_t *j = json_object(), *m = json_object();
    if (!j || !m) {
        json_decref(j);
        json_decref(m);
        return NULL;
    }
    json_object_set_new(j, "name", json_string(x->name));
    json_object_set_new(j, "version", json_integer(x->version));
    json_object_set_new(j, "status", json_string(hvs_model_status_name(x->status)));
    json_object_set_new(j, "serving", json_boolean(is_serving));
    if (c->checks[i].state < 0) {
        char why[HVS_ERR_REASON_MAX + HVS_ERR_MSG_MAX + 4];
        snprintf(why, sizeof why, "%s: %s", c->checks[i].why.reason, c->checks[i].why.msg);
        json_object_set_new(j, "refused", str_or_null(why));
    }
    json_object_set_new(j, "created_at", iso(x->created_at));
    json_object_set_new(j, "train_start", iso(x->train_start));
    json_object_set_new(j, "train_end", iso(x->train_end));
    json_object_set_new(j, "feature_set_version", str_or_null(x->feature_set_version));
    json_object_set_new(j, "features", json_integer((json_int_t)x->nfeatures));
    json_object_set_new(m, "wape", num_or_null(x->wape));
    json_object_set_new(m, "mape", num_or_null(x->mape));
    json_object_set_new(m, "rmse", num_or_null(x->rmse));
    json_object_set_new(m, "mae", num_or_null(x->mae));
    json_object_set_new(j, "metrics", m);
    json_object_set_new(j, "decided_by", str_or_null(x->decided_by));
    json_object_set_new(j, "decision_reason", str_or_null(x->decision_reason));
    return j;
}

static int cmd_list(mctx_t *c, const mopts_t *o) {
    int rc = 0;
    for (size_t lo = 0; lo < c->n && rc == 0;) {
        size_t hi = lo;
        while (hi < c->n && strcmp(c->v[hi].name, c->v[lo].name) == 0)
            hi++;
        int serves = serving(c, lo, hi, 0, 0, NULL);
        for (size_t i = lo; i < hi && rc == 0; i++)
            rc = emit(c, info_json(c, i, c->v[i].version == serves));
        lo = hi;
    }
    if (c->n == 0)
        fprintf(stderr, "hvsctl %s: no model versions%s%s on topic %s\n", c->cmd,
                o->name ? " named " : "", o->name ? o->name : "", c->topic);
    return rc;
}

/* ---- show ------------------------------------------------------------------------------------- */

static int cmd_show(mctx_t *c, const mopts_t *o) {
    size_t lo, hi;
    long at = pick(c, o, &lo, &hi);
    if (at < 0)
        return 1;
    const hvs_model_info_t *x = &c->v[at];
    if (!x->record) {
        fprintf(stderr, "hvsctl %s: %s v%d: record not kept (out of memory)\n", c->cmd, x->name,
                x->version);
        return 1;
    }
    hvs_err_t err = {0};
    hvs_decoder_t *dec = NULL;
    avro_value_t *v, f;
    const void *zbytes;
    size_t zlen = 0;
    char *text = NULL;
    json_t *j = NULL;
    int rc = 1;
    if (hvs_decoder_new(c->serde, HVS_SCHEMA_MODEL_VERSION, &dec, &err) != 0 ||
        hvs_decoder_decode(dec, x->record, x->record_len, &v, &err) != 0) {
        fprintf(stderr, "hvsctl %s: %s v%d: %s\n", c->cmd, x->name, x->version, err.msg);
        goto out;
    }
    if (avro_value_get_by_name(v, "model_bytes", &f, NULL) != 0 ||
        avro_value_get_bytes(&f, &zbytes, &zlen) != 0 || avro_value_set_bytes(&f, "", 0) != 0) {
        fprintf(stderr, "hvsctl %s: %s v%d: record without model_bytes\n", c->cmd, x->name,
                x->version);
        goto out;
    }
    if (hvs_serde_value_to_json(v, &text, &err) != 0 || !(j = json_loads(text, 0, NULL))) {
        fprintf(stderr, "hvsctl %s: %s v%d as JSON: %s\n", c->cmd, x->name, x->version,
                text ? "not parseable" : err.msg);
        goto out;
    }
    json_t *mb = json_object(), *val = json_object();
    json_object_set_new(j, "model_bytes", mb);
    json_object_set_new(mb, "compressed_length", json_integer((json_int_t)zlen));
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    if (hvs_registry_model_bytes(c->serde, x->record, x->record_len, &raw, &rawlen, &err) == 0) {
        json_object_set_new(mb, "length", json_integer((json_int_t)rawlen));
        json_object_set_new(mb, "crc32", crc_hex(raw, rawlen));
        free(raw);
    } else {
        json_object_set_new(mb, "error", str_or_null(err.msg));
    }
    char key[512];
    json_object_set_new(j, "key",
                        hvs_registry_key(key, sizeof key, x->name, x->version) >= 0
                            ? json_string(key)
                            : json_null());
    int serves = serving(c, lo, hi, 0, 0, NULL);
    json_object_set_new(j, "serving", json_boolean(serves == x->version));
    bool ok = validates(c, (size_t)at);
    json_object_set_new(val, "ok", json_boolean(ok));
    if (!ok) {
        json_object_set_new(val, "reason", str_or_null(c->checks[at].why.reason));
        json_object_set_new(val, "error", str_or_null(c->checks[at].why.msg));
    }
    json_object_set_new(j, "validation", val);
    rc = emit(c, j);
    j = NULL;
out:
    json_decref(j);
    free(text);
    hvs_decoder_destroy(dec);
    return rc;
}

/* ---- approve / reject / rollback -------------------------------------------------------------- */

static const char *decider(const mopts_t *o) {
    const char *user = getenv("USER");
    return o->by && o->by[0] ? o->by : user && user[0] ? user : "hvsctl";
}

/* Re-publish c->v[i] with status st and the decision, and wait for the broker's
 * acknowledgement. 0, or 1 with the reason printed. */
static int publish(mctx_t *c, size_t i, hvs_model_status_t st, const char *by, const char *reason,
                   hvs_ms_t at, long timeout_s) {
    const hvs_model_info_t *x = &c->v[i];
    hvs_err_t err = {0};
    hvs_encoder_t *enc = NULL;
    hvs_producer_t *p = NULL;
    const void *buf;
    size_t len;
    char key[512];
    int rc = 1;
    if (!x->record || hvs_registry_key(key, sizeof key, x->name, x->version) < 0) {
        fprintf(stderr, "hvsctl %s: %s v%d: %s\n", c->cmd, x->name, x->version,
                x->record ? "name too long for a key" : "record not kept (out of memory)");
        return 1;
    }
    if (hvs_encoder_new(c->serde, HVS_SCHEMA_MODEL_VERSION, c->topic, &enc, &err) != 0 ||
        hvs_registry_restatus(c->serde, enc, x->record, x->record_len, st, by, reason, at, &buf,
                              &len, &err) != 0) {
        fprintf(stderr, "hvsctl %s: %s as %s: %s\n", c->cmd, key, hvs_model_status_name(st),
                err.msg);
        goto out;
    }
    static const char *const pprops[] = {"message.max.bytes", HVS_TOPIC_MODELS_MAX_MESSAGE_STR,
                                         NULL};
    hvs_kafka_conf_t pkc = c->kc;
    pkc.worker_props = pprops;
    if (hvs_producer_new(&pkc, &p, &err) != 0 ||
        hvs_producer_send(p, c->topic, RD_KAFKA_PARTITION_UA, key, strlen(key), buf, len, &err) !=
            0 ||
        hvs_producer_flush(p, (int)(timeout_s * 1000), &err) != 0) {
        fprintf(stderr, "hvsctl %s: publishing %s as %s to %s at %s: %s\n", c->cmd, key,
                hvs_model_status_name(st), c->topic, c->kc.brokers, err.msg);
        goto out;
    }
    rc = 0;
out:
    hvs_producer_destroy(p);
    hvs_encoder_destroy(enc);
    return rc;
}

static json_t *version_or_null(int v) { return v > 0 ? json_integer(v) : json_null(); }

static json_t *decision_json(const hvs_model_info_t *x, hvs_model_status_t from,
                             hvs_model_status_t to, const char *by, const char *reason, hvs_ms_t at,
                             bool published, int before, int after) {
    json_t *j = json_object();
    if (!j)
        return NULL;
    json_object_set_new(j, "name", json_string(x->name));
    json_object_set_new(j, "version", json_integer(x->version));
    json_object_set_new(j, "previous_status", json_string(hvs_model_status_name(from)));
    json_object_set_new(j, "status", json_string(hvs_model_status_name(to)));
    json_object_set_new(j, "decided_by", str_or_null(published ? by : x->decided_by));
    json_object_set_new(j, "decided_at", published ? iso(at) : json_null());
    json_object_set_new(j, "decision_reason", str_or_null(published ? reason : x->decision_reason));
    json_object_set_new(j, "published", json_boolean(published));
    json_object_set_new(j, "serving_before", version_or_null(before));
    json_object_set_new(j, "serving_after", version_or_null(after));
    return j;
}

static int cmd_decide(mctx_t *c, const mopts_t *o, hvs_model_status_t to) {
    size_t lo, hi;
    long at = pick(c, o, &lo, &hi);
    if (at < 0)
        return 1;
    const hvs_model_info_t *x = &c->v[at];
    hvs_model_status_t from = x->status;
    const char *by = decider(o), *to_name = hvs_model_status_name(to);
    int before = serving(c, lo, hi, 0, 0, NULL);
    if (from == to) {
        fprintf(stderr, "hvsctl %s: %s v%d is already %s; nothing published\n", c->cmd, x->name,
                x->version, to_name);
        return emit(c, decision_json(x, from, to, by, o->reason, 0, false, before, before));
    }
    if (to == HVS_MODEL_APPROVED && !o->force) {
        if (from == HVS_MODEL_REJECTED || from == HVS_MODEL_ARCHIVED) {
            fprintf(stderr,
                    "hvsctl %s: %s v%d is %s (decided by %s: %s); approving it again "
                    "needs --force\n",
                    c->cmd, x->name, x->version, hvs_model_status_name(from),
                    x->decided_by ? x->decided_by : "?",
                    x->decision_reason ? x->decision_reason : "no reason given");
            return 1;
        }
        if (!validates(c, (size_t)at)) {
            fprintf(stderr,
                    "hvsctl %s: %s v%d would not serve: it does not validate (%s: %s); "
                    "--force approves it anyway\n",
                    c->cmd, x->name, x->version, c->checks[at].why.reason, c->checks[at].why.msg);
            return 1;
        }
    }
    if (to == HVS_MODEL_REJECTED && !o->force && before == x->version) {
        int next = serving(c, lo, hi, x->version, to, NULL);
        char then[64];
        if (next)
            snprintf(then, sizeof then, "make v%d serve", next);
        else
            snprintf(then, sizeof then, "leave none serving");
        fprintf(stderr,
                "hvsctl %s: %s v%d is serving; rejecting it would %s. `hvsctl model "
                "rollback %s` archives it; --force rejects it\n",
                c->cmd, x->name, x->version, then, x->name);
        return 1;
    }
    hvs_ms_t now = hvs_time_now_ms();
    if (publish(c, (size_t)at, to, by, o->reason, now, o->timeout_s) != 0)
        return 1;
    int after = serving(c, lo, hi, x->version, to, NULL);
    if (to == HVS_MODEL_APPROVED && after != x->version)
        fprintf(stderr, "hvsctl %s: %s v%d approved; %s\n", c->cmd, x->name, x->version,
                validates(c, (size_t)at) ? "a higher approved version serves"
                                         : "it does not validate and will not serve");
    return emit(c, decision_json(x, from, to, by, o->reason, now, true, before, after));
}

static int cmd_rollback(mctx_t *c, const mopts_t *o) {
    size_t lo, hi, at = 0;
    name_range(c, o->name, &lo, &hi);
    if (lo == hi) {
        fprintf(stderr, "hvsctl %s: no model named \"%s\" on topic %s\n", c->cmd, o->name,
                c->topic);
        return 1;
    }
    int cur = serving(c, lo, hi, 0, 0, &at);
    if (!cur) {
        fprintf(stderr,
                "hvsctl %s: no version of %s serves (none APPROVED that validates); "
                "nothing to roll back\n",
                c->cmd, o->name);
        return 1;
    }
    int next = serving(c, lo, hi, cur, HVS_MODEL_ARCHIVED, NULL);
    if (!next && !o->force) {
        fprintf(stderr,
                "hvsctl %s: %s v%d is the only approved version that validates; archiving "
                "it would leave none serving (--force archives it anyway)\n",
                c->cmd, o->name, cur);
        return 1;
    }
    const char *by = decider(o), *reason = o->reason ? o->reason : "rollback";
    hvs_ms_t now = hvs_time_now_ms();
    if (publish(c, at, HVS_MODEL_ARCHIVED, by, reason, now, o->timeout_s) != 0)
        return 1;
    json_t *j = decision_json(&c->v[at], HVS_MODEL_APPROVED, HVS_MODEL_ARCHIVED, by, reason, now,
                              true, cur, next);
    if (j) {
        json_object_set_new(j, "archived", json_integer(cur));
        json_object_set_new(j, "serving", version_or_null(next));
    }
    return emit(c, j);
}

/* ---- export ----------------------------------------------------------------------------------- */

/* The record's feature names as a JSON array; NULL after printing why. */
static json_t *feature_names(mctx_t *c, const hvs_model_info_t *x) {
    hvs_decoder_t *dec = NULL;
    hvs_err_t err = {0};
    avro_value_t *v, arr, item;
    size_t n = 0;
    json_t *names = NULL;
    if (hvs_decoder_new(c->serde, HVS_SCHEMA_MODEL_VERSION, &dec, &err) != 0 ||
        hvs_decoder_decode(dec, x->record, x->record_len, &v, &err) != 0) {
        fprintf(stderr, "hvsctl %s: %s v%d: %s\n", c->cmd, x->name, x->version, err.msg);
    } else if (avro_value_get_by_name(v, "feature_names", &arr, NULL) != 0 ||
               avro_value_get_size(&arr, &n) != 0 || !(names = json_array())) {
        fprintf(stderr, "hvsctl %s: %s v%d: no feature names\n", c->cmd, x->name, x->version);
    } else {
        for (size_t i = 0; i < n && names; i++) {
            const char *s;
            size_t sl;
            json_t *js = NULL;
            if (avro_value_get_by_index(&arr, i, &item, NULL) != 0 ||
                avro_value_get_string(&item, &s, &sl) != 0 || !(js = json_string(s)) ||
                json_array_append_new(names, js) != 0) {
                fprintf(stderr, "hvsctl %s: %s v%d: feature %zu unreadable\n", c->cmd, x->name,
                        x->version, i);
                json_decref(names);
                names = NULL;
            }
        }
    }
    hvs_decoder_destroy(dec);
    return names;
}

/* Write len bytes to path through a temporary file renamed into place. 0, or 1 (printed). */
static int write_file(const mctx_t *c, const char *path, const unsigned char *p, size_t len) {
    size_t cap = strlen(path) + 32;
    char *tmp = malloc(cap);
    if (!tmp) {
        fprintf(stderr, "hvsctl %s: out of memory for %s\n", c->cmd, path);
        return 1;
    }
    snprintf(tmp, cap, "%s.tmp.%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    bool ok = f && fwrite(p, 1, len, f) == len;
    if (f && fclose(f) != 0)
        ok = false;
    if (ok && rename(tmp, path) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "hvsctl %s: cannot write %s: %s\n", c->cmd, path, strerror(errno));
        if (f)
            unlink(tmp);
    }
    free(tmp);
    return ok ? 0 : 1;
}

static int cmd_export(mctx_t *c, const mopts_t *o) {
    size_t lo, hi;
    long at = pick(c, o, &lo, &hi);
    if (at < 0)
        return 1;
    const hvs_model_info_t *x = &c->v[at];
    if (!x->record) {
        fprintf(stderr, "hvsctl %s: %s v%d: record not kept (out of memory)\n", c->cmd, x->name,
                x->version);
        return 1;
    }
    hvs_err_t err = {0};
    unsigned char *raw = NULL;
    size_t rawlen = 0;
    hvs_model_t *m = NULL;
    json_t *names = NULL;
    int rc = 1;
    if (hvs_registry_model_bytes(c->serde, x->record, x->record_len, &raw, &rawlen, &err) != 0) {
        fprintf(stderr, "hvsctl %s: %s v%d: the model bytes do not decompress: %s\n", c->cmd,
                x->name, x->version, err.msg);
        goto out;
    }
    if (hvs_model_load(raw, rawlen, x->nfeatures, &m, &err) != 0) {
        fprintf(stderr, "hvsctl %s: %s v%d does not load as a model of %zu features: %s\n", c->cmd,
                x->name, x->version, x->nfeatures, err.msg);
        goto out;
    }
    if (!(names = feature_names(c, x)) || write_file(c, o->out, raw, rawlen) != 0)
        goto out;
    json_t *j = json_object();
    if (j) {
        json_object_set_new(j, "name", json_string(x->name));
        json_object_set_new(j, "version", json_integer(x->version));
        json_object_set_new(j, "status", json_string(hvs_model_status_name(x->status)));
        json_object_set_new(j, "model_format", json_string(hvs_model_format(m)));
        json_object_set_new(j, "file", str_or_null(o->out));
        json_object_set_new(j, "length", json_integer((json_int_t)rawlen));
        json_object_set_new(j, "crc32", crc_hex(raw, rawlen));
        json_object_set_new(j, "feature_set_version", str_or_null(x->feature_set_version));
        json_object_set_new(j, "features", names);
        names = NULL;
    }
    rc = emit(c, j);
out:
    json_decref(names);
    hvs_model_destroy(m);
    free(raw);
    return rc;
}

/* ---- dispatch --------------------------------------------------------------------------------- */

int hvsctl_model(hvs_app_t *app, int argc, char **argv) {
    const struct {
        const char *name, *help;
        unsigned opts;
    } subs[] = {
        {"list", help_list, O_PREFIX},
        {"show", help_show, O_NAME | O_VERSION},
        {"approve", help_approve, O_NAME | O_VERSION | O_DECIDE},
        {"reject", help_reject, O_NAME | O_VERSION | O_DECIDE},
        {"rollback", help_rollback, O_NAME | O_DECIDE},
        {"export", help_export, O_NAME | O_VERSION | O_OUT},
    };
    if (argc < 1) {
        fprintf(stderr, "%s\n", help_model);
        return 2;
    }
    if (strcmp(argv[0], "--help") == 0 || strcmp(argv[0], "-h") == 0) {
        puts(help_model);
        return 0;
    }
    size_t k = 0, nsubs = sizeof subs / sizeof subs[0];
    while (k < nsubs && strcmp(argv[0], subs[k].name) != 0)
        k++;
    if (k == nsubs) {
        fprintf(stderr, "hvsctl model: unknown command \"%s\"\n\n%s\n", argv[0], help_model);
        return 2;
    }
    if (hvsctl_wants_help(argc - 1, argv + 1)) {
        puts(subs[k].help);
        return 0;
    }
    mctx_t c = {.app = app};
    snprintf(c.cmd, sizeof c.cmd, "model %s", subs[k].name);
    mopts_t o;
    int rc = parse_opts(c.cmd, argc - 1, argv + 1, subs[k].opts, &o);
    if (rc != 0)
        return rc;
    bool decide = k == 2 || k == 3;
    if (decide && !o.version) {
        fprintf(stderr, "hvsctl %s: --version N is required (which version of %s?)\n", c.cmd,
                o.name);
        return 2;
    }
    rc = open_registry(&c, o.name, o.timeout_s);
    if (rc == 0) {
        switch (k) {
        case 0: rc = cmd_list(&c, &o); break;
        case 1: rc = cmd_show(&c, &o); break;
        case 2: rc = cmd_decide(&c, &o, HVS_MODEL_APPROVED); break;
        case 3: rc = cmd_decide(&c, &o, HVS_MODEL_REJECTED); break;
        case 4: rc = cmd_rollback(&c, &o); break;
        default: rc = cmd_export(&c, &o); break;
        }
    }
    close_registry(&c);
    return rc;
}
