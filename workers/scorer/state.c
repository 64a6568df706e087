/* state.c - the scorer's buildings, apartments and their Redis state (state.h). */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/vec.h"

#define KEY_MAX 700
#define SLOT_TEXT_MAX 4096

sc_state_t *sc_state_new(void) { return calloc(1, sizeof(sc_state_t)); }

static void building_free(sc_building_t *b) {
    if (!b)
        return;
    for (size_t i = 0; i < b->napts; i++)
        sc_apartment_destroy(b->apts[i]);
    free(b->apts);
    free(b->id);
    free(b);
}

void sc_state_destroy(sc_state_t *s) {
    if (!s)
        return;
    for (size_t i = 0; i < s->n; i++)
        building_free(s->b[i]);
    free(s->b);
    sc_idents_free(&s->idents);
    free(s->text);
    free(s);
}

sc_building_t *sc_state_building(sc_state_t *s, const char *id, int32_t partition, bool create) {
    size_t at;
    bool found;
    HVS_VEC_BSEARCH_STR(s->b, s->n, ->id, id, at, found);
    if (found)
        return s->b[at];
    if (!create)
        return NULL;
    sc_building_t **g = hvs_vec_grow(s->b, &s->cap, s->n + 1, sizeof *s->b, 64);
    sc_building_t *b = calloc(1, sizeof *b);
    if (!g || !b || !(b->id = strdup(id))) {
        if (g)
            s->b = g;
        free(b);
        return NULL;
    }
    s->b = g;
    b->partition = partition;
    memmove(&s->b[at + 1], &s->b[at], (s->n - at) * sizeof *s->b);
    s->b[at] = b;
    s->n++;
    return b;
}

sc_apartment_t *sc_state_apartment(sc_building_t *b, const char *id, bool create) {
    size_t at;
    bool found;
    HVS_VEC_BSEARCH_STR(b->apts, b->napts, ->id, id, at, found);
    if (found)
        return b->apts[at];
    if (!create)
        return NULL;
    sc_apartment_t **g = hvs_vec_grow(b->apts, &b->cap, b->napts + 1, sizeof *b->apts, 16);
    if (!g)
        return NULL;
    b->apts = g;
    sc_apartment_t *a = sc_apartment_new(id);
    if (!a)
        return NULL;
    memmove(&b->apts[at + 1], &b->apts[at], (b->napts - at) * sizeof *b->apts);
    b->apts[at] = a;
    b->napts++;
    b->new_apts = true;
    return a;
}

void sc_state_drop_partition(sc_state_t *s, int32_t p) {
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->b[i]->partition == p)
            building_free(s->b[i]);
        else
            s->b[k++] = s->b[i];
    }
    s->n = k;
}

static const redisReply *reply(hvs_redis_batch_t *b, size_t i, int type) {
    const redisReply *r = hvs_redis_batch_reply(b, i);
    return r && r->type == type ? r : NULL;
}

/* The ids of a set's reply that pass the id rule (stored before a check: skipped loudly). */
static bool usable_id(const redisReply *x, const char *where) {
    hvs_err_t bad = {0};
    if (x->type != REDIS_REPLY_STRING)
        return false;
    if (hvs_id_check_n(x->str, x->len, "id", &bad)) {
        hvs_log_warn("scorer", "%s: stored id skipped: %s", where, bad.msg);
        return false;
    }
    return true;
}

/* The members of set `key` that pass the id rule, copied (*ids, *n; the caller frees them with
 * free_ids). */
static int read_set(hvs_redis_t *r, hvs_redis_batch_t *rb, const char *key, char ***ids, size_t *n,
                    hvs_err_t *err) {
    hvs_redis_batch_reset(rb);
    const char *a1[] = {"SMEMBERS", key};
    if (hvs_redis_batch_add(rb, 2, a1, NULL))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    int rc = hvs_redis_batch_exec(r, rb, err);
    if (rc)
        return rc;
    const redisReply *m = reply(rb, 0, REDIS_REPLY_ARRAY);
    size_t count = m ? m->elements : 0;
    *n = 0;
    if (!(*ids = calloc(count ? count : 1, sizeof **ids)))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "members of %s", key);
    for (size_t i = 0; i < count; i++)
        if (usable_id(m->element[i], key) && ((*ids)[*n] = strdup(m->element[i]->str)))
            (*n)++;
    return 0;
}

static void free_ids(char **ids, size_t n) {
    for (size_t i = 0; i < n; i++)
        free(ids[i]);
    free(ids);
}

static int load_building(sc_state_t *s, hvs_redis_t *r, hvs_redis_batch_t *rb, sc_building_t *b,
                         hvs_err_t *err) {
    char key[KEY_MAX];
    if (hvs_redis_key(key, sizeof key, b->id, err, "sc:apts") < 0)
        return HVS_EINVAL;
    char **ids;
    size_t k;
    int rc = read_set(r, rb, key, &ids, &k, err);
    if (rc)
        return rc;
    hvs_redis_batch_reset(rb);
    for (size_t i = 0; i < k && rc == 0; i++) {
        if (hvs_redis_key(key, sizeof key, b->id, err, "sc:a:%s", ids[i]) < 0)
            rc = HVS_EINVAL;
        else {
            const char *a2[] = {"HGETALL", key};
            if (hvs_redis_batch_add(rb, 2, a2, NULL))
                rc = hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
        }
    }
    if (rc == 0 && k)
        rc = hvs_redis_batch_exec(r, rb, err);
    for (size_t i = 0; i < k && rc == 0; i++) {
        sc_apartment_t *a = sc_state_apartment(b, ids[i], true);
        if (!a) {
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "apartment %s/%s", b->id, ids[i]);
            break;
        }
        const redisReply *h = reply(rb, i, REDIS_REPLY_ARRAY);
        for (size_t j = 0; h && j + 1 < h->elements; j += 2) {
            const redisReply *v = h->element[j + 1];
            if (v->type != REDIS_REPLY_STRING || sc_slot_decode(a, &s->idents, v->str, v->len) != 0)
                hvs_log_warn("scorer", "%s/%s: unreadable slot %s skipped", b->id, ids[i],
                             h->element[j]->type == REDIS_REPLY_STRING ? h->element[j]->str : "?");
        }
        memset(a->dirty, 0, sizeof a->dirty);
    }
    free_ids(ids, k);
    b->listed = true;
    b->new_apts = false;
    return rc;
}

int sc_state_load_partition(sc_state_t *s, hvs_redis_t *r, hvs_redis_batch_t *rb, int32_t p,
                            size_t *nbuildings, hvs_err_t *err) {
    sc_state_drop_partition(s, p); /* a stale copy from an earlier assignment */
    char part[48];
    snprintf(part, sizeof part, "hvs:sc:part:%d", (int)p);
    char **ids;
    size_t k;
    int rc = read_set(r, rb, part, &ids, &k, err);
    if (rc)
        return rc;
    *nbuildings = 0;
    for (size_t i = 0; i < k && rc == 0; i++) {
        sc_building_t *b = sc_state_building(s, ids[i], p, true);
        if (!b)
            rc = hvs_err_set(err, HVS_ENOMEM, "oom", "building %s", ids[i]);
        else if ((rc = load_building(s, r, rb, b, err)) == 0)
            (*nbuildings)++;
    }
    free_ids(ids, k);
    return rc;
}

static int save_apartment(sc_state_t *s, hvs_redis_batch_t *batch, sc_building_t *b,
                          sc_apartment_t *a, char *text, hvs_err_t *err) {
    if (!a->dirty[0] && !a->dirty[1])
        return 0;
    char key[KEY_MAX];
    if (hvs_redis_key(key, sizeof key, b->id, err, "sc:a:%s", a->id) < 0)
        return HVS_EINVAL;
    const char *argv[2 + 2 * SC_RING];
    size_t argl[2 + 2 * SC_RING];
    char fields[SC_RING][8];
    int argc = 0;
    argv[argc] = "HSET";
    argl[argc++] = 4;
    argv[argc] = key;
    argl[argc++] = strlen(key);
    size_t used = 0;
    for (size_t i = 0; i < SC_RING; i++) {
        if (!(a->dirty[i / 64] >> (i % 64) & 1))
            continue;
        size_t len = sc_slot_encode(a, &s->idents, &a->slots[i], text + used,
                                    SLOT_TEXT_MAX * SC_RING - used);
        if (len == 0)
            return hvs_err_set(err, HVS_EINVAL, "slot_too_large", "slot %zu of %s/%s", i, b->id,
                               a->id);
        snprintf(fields[i], sizeof fields[i], "%zu", i);
        argv[argc] = fields[i];
        argl[argc++] = strlen(fields[i]);
        argv[argc] = text + used;
        argl[argc++] = len;
        used += len + 1;
    }
    if (hvs_redis_batch_add(batch, argc, argv, argl))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    memset(a->dirty, 0, sizeof a->dirty);
    return 0;
}

static int save_listing(hvs_redis_batch_t *batch, sc_building_t *b, hvs_err_t *err) {
    char key[KEY_MAX];
    if (!b->listed) {
        char part[48];
        snprintf(part, sizeof part, "hvs:sc:part:%d", (int)b->partition);
        const char *a1[] = {"SADD", part, b->id};
        if (hvs_redis_batch_add(batch, 3, a1, NULL))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
        b->listed = true;
    }
    if (!b->new_apts || b->napts == 0)
        return 0;
    if (hvs_redis_key(key, sizeof key, b->id, err, "sc:apts") < 0)
        return HVS_EINVAL;
    const char **argv = malloc((b->napts + 2) * sizeof *argv);
    if (!argv)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    argv[0] = "SADD";
    argv[1] = key;
    for (size_t i = 0; i < b->napts; i++)
        argv[i + 2] = b->apts[i]->id;
    int bad = hvs_redis_batch_add(batch, (int)b->napts + 2, argv, NULL);
    free(argv);
    if (bad)
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    b->new_apts = false;
    return 0;
}

int sc_state_save(sc_state_t *s, hvs_redis_batch_t *batch, hvs_err_t *err) {
    if (!s->text && !(s->text = malloc((size_t)SLOT_TEXT_MAX * SC_RING)))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "slot text");
    char *text = s->text;
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        sc_building_t *b = s->b[i];
        rc = save_listing(batch, b, err);
        for (size_t j = 0; j < b->napts && rc == 0; j++)
            rc = save_apartment(s, batch, b, b->apts[j], text, err);
    }
    return rc;
}
