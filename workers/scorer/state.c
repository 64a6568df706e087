/* state.c - the scorer's buildings, apartments and their Redis state (state.h). */
#include "state.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvs/ids.h"
#include "hvs/log.h"
#include "hvs/vec.h"

#define KEY_MAX 700

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
    for (size_t k = 0; k < SC_BLOCKS; k++)
        free(s->block[k]);
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

/* Read one apartment's stored fields into a: blocks first, then text slots of earlier versions
 * (a slot stored both ways keeps the newer half, sc_slot_decode). A field that does not parse is
 * skipped loudly: the ring loses those hours, the worker goes on. */
static void load_fields(sc_state_t *s, sc_building_t *b, sc_apartment_t *a, const redisReply *h) {
    for (int pass = 0; pass < 2 && h; pass++)
        for (size_t j = 0; j + 1 < h->elements; j += 2) {
            const redisReply *f = h->element[j], *v = h->element[j + 1];
            if (f->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
                continue;
            bool block = f->len > 1 && f->str[0] == 'b';
            if (block != (pass == 0))
                continue;
            char *end;
            unsigned long k = block ? strtoul(f->str + 1, &end, 10) : 0;
            int bad = block ? *end != '\0' || sc_block_decode(a, &s->idents, k, v->str, v->len)
                            : sc_slot_decode(a, &s->idents, v->str, v->len);
            if (bad)
                hvs_log_warn("scorer", "hvs:{%s}:sc:a:%s: unreadable field %s skipped", b->id,
                             a->id, f->str);
            a->legacy |= !block;
        }
    /* state of one text field per slot is rewritten in blocks by the next save */
    memset(a->dirty, a->legacy ? 0xff : 0, sizeof a->dirty);
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
        load_fields(s, b, a, reply(rb, i, REDIS_REPLY_ARRAY));
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

/* Block k of a encoded into the state's scratch for that block, grown when it does not fit;
 * *len its length. */
static int encode_block(sc_state_t *s, const sc_apartment_t *a, size_t k, size_t *len) {
    for (;;) {
        *len = sc_block_encode(a, &s->idents, k, s->block[k], s->block_cap[k]);
        if (*len <= s->block_cap[k])
            return 0;
        size_t cap = *len + *len / 2;
        char *g = realloc(s->block[k], cap);
        if (!g)
            return HVS_ENOMEM;
        s->block[k] = g;
        s->block_cap[k] = cap;
    }
}

/* Queue "HSET key b<k> block ..." of a's blocks with a changed slot (a block whose slots are all
 * empty is left out: a slot never empties again), after "DEL key" when a was loaded from fields
 * other than blocks - text fields of one slot each, or anything else stray (its load marked
 * every slot, so every block is written again in the same transaction). */
static int save_apartment(sc_state_t *s, hvs_redis_batch_t *batch, sc_building_t *b,
                          sc_apartment_t *a, hvs_err_t *err) {
    if (!a->dirty[0] && !a->dirty[1])
        return 0;
    char key[KEY_MAX];
    if (hvs_redis_key(key, sizeof key, b->id, err, "sc:a:%s", a->id) < 0)
        return HVS_EINVAL;
    const char *argv[2 + 2 * SC_BLOCKS];
    size_t argl[2 + 2 * SC_BLOCKS];
    char fields[SC_BLOCKS][8];
    if (a->legacy) {
        const char *del[] = {"DEL", key};
        if (hvs_redis_batch_add(batch, 2, del, NULL))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    }
    int argc = 2;
    for (size_t k = 0; k < SC_BLOCKS; k++) {
        bool marked = false, filled = false;
        for (size_t i = k * SC_BLOCK_HOURS; i < (k + 1) * SC_BLOCK_HOURS; i++) {
            marked |= a->dirty[i / 64] >> (i % 64) & 1;
            filled |= a->slots[i].agg.hour != HVS_MS_NONE || a->slots[i].model.hour != HVS_MS_NONE;
        }
        if (!marked || !filled)
            continue;
        size_t len;
        if (encode_block(s, a, k, &len))
            return hvs_err_set(err, HVS_ENOMEM, "oom", "block %zu of %s/%s", k, b->id, a->id);
        snprintf(fields[k], sizeof fields[k], "b%zu", k);
        argv[argc] = fields[k];
        argl[argc++] = strlen(fields[k]);
        argv[argc] = s->block[k];
        argl[argc++] = len;
    }
    argv[0] = "HSET", argl[0] = 4;
    argv[1] = key, argl[1] = strlen(key);
    if (argc > 2 && hvs_redis_batch_add(batch, argc, argv, argl))
        return hvs_err_set(err, HVS_ENOMEM, "oom", "redis batch");
    memset(a->dirty, 0, sizeof a->dirty);
    a->legacy = false;
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
    int rc = 0;
    for (size_t i = 0; i < s->n && rc == 0; i++) {
        sc_building_t *b = s->b[i];
        rc = save_listing(batch, b, err);
        for (size_t j = 0; j < b->napts && rc == 0; j++)
            rc = save_apartment(s, batch, b, b->apts[j], err);
    }
    return rc;
}
