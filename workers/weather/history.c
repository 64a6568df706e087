/* history.c - per-location change detection (see history.h). */
#include "history.h"

#include <stdlib.h>
#include <string.h>

static int32_t hour_index(hvs_ms_t t) { return (int32_t)(t / HVS_MS_HOUR); }

static bool same(const wx_hist_entry_t *e, const wx_hour_t *h) {
    if (e->kind != h->kind || e->present != h->present)
        return false;
    for (int v = 0; v < WX_NVARS; v++)
        if ((h->present & (1u << v)) && memcmp(&e->v[v], &h->v[v], sizeof h->v[v]) != 0)
            return false;
    return true;
}

/* Position of the first entry at or after hour index hi, starting the search at j. */
static size_t seek(const wx_history_t *hist, size_t j, int32_t hi) {
    while (j < hist->n && hist->e[j].hour < hi)
        j++;
    return j;
}

void wx_history_diff(const wx_history_t *hist, const wx_hour_t *hours, size_t n, hvs_ms_t cut,
                     size_t *changed, size_t *nchanged) {
    size_t k = 0, j = 0;
    for (size_t i = 0; i < n; i++) {
        const wx_hour_t *h = &hours[i];
        if (h->hour < cut || h->present == 0)
            continue;
        int32_t hi = hour_index(h->hour);
        j = seek(hist, j, hi);
        if (j < hist->n && hist->e[j].hour == hi && same(&hist->e[j], h))
            continue;
        changed[k++] = i;
    }
    *nchanged = k;
}

static void set_entry(wx_hist_entry_t *e, const wx_hour_t *h) {
    e->hour = hour_index(h->hour);
    e->kind = h->kind;
    e->present = h->present;
    e->in_last = 1;
    for (int v = 0; v < WX_NVARS; v++)
        e->v[v] = (h->present & (1u << v)) ? h->v[v] : 0.0;
}

int wx_history_apply(wx_history_t *hist, const wx_hour_t *hours, size_t n, const size_t *published,
                     size_t npublished, hvs_ms_t cut) {
    size_t cap = hist->n + n;
    wx_hist_entry_t *out = malloc((cap ? cap : 1) * sizeof *out);
    if (!out)
        return HVS_ENOMEM;
    int32_t cut_hi = INT32_MIN;
    if (cut > 0) {
        cut_hi = hour_index(cut);
        if (cut % HVS_MS_HOUR != 0)
            cut_hi++; /* hours starting before cut are gone */
    }
    size_t m = 0, j = 0, p = 0;
    for (size_t i = 0; i <= n; i++) {
        const wx_hour_t *h = i < n ? &hours[i] : NULL;
        int32_t hi = h ? hour_index(h->hour) : INT32_MAX;
        /* history entries before this response hour: kept, no longer in the last response */
        for (; j < hist->n && hist->e[j].hour < hi; j++)
            if (hist->e[j].hour >= cut_hi) {
                out[m] = hist->e[j];
                out[m++].in_last = 0;
            }
        if (!h)
            break;
        bool pub = p < npublished && published[p] == i;
        if (pub)
            p++;
        const wx_hist_entry_t *old = j < hist->n && hist->e[j].hour == hi ? &hist->e[j] : NULL;
        if (old)
            j++;
        if (h->hour < cut || hi < cut_hi)
            continue;
        if (pub || (old && h->present && same(old, h))) {
            set_entry(&out[m++], h);
        } else if (old) {
            out[m] = *old; /* all null now, or not published: the last published record stays */
            out[m++].in_last = 0;
        }
    }
    /* keep only what is used: a location's history lives as long as the process */
    wx_hist_entry_t *fit = m ? realloc(out, m * sizeof *out) : NULL;
    if (m && !fit)
        fit = out; /* shrinking failed: keep the larger block */
    else if (!m)
        free(out);
    free(hist->e);
    hist->e = fit;
    hist->n = m;
    hist->cap = m;
    return 0;
}

int wx_history_last_response(const wx_history_t *hist, hvs_ms_t now, wx_hours_t *out) {
    out->n = 0;
    if (wx_hours_reserve(out, hist->n ? hist->n : 1))
        return HVS_ENOMEM;
    for (size_t j = 0; j < hist->n; j++) {
        const wx_hist_entry_t *e = &hist->e[j];
        if (!e->in_last)
            continue;
        wx_hour_t *h = &out->h[out->n++];
        h->hour = (hvs_ms_t)e->hour * HVS_MS_HOUR;
        h->kind = h->hour + HVS_MS_HOUR <= now ? WX_OBSERVED : WX_FORECAST;
        h->present = e->present;
        memcpy(h->v, e->v, sizeof h->v);
    }
    return 0;
}

size_t wx_history_size(const wx_history_t *hist) { return hist->n; }

void wx_history_clear(wx_history_t *hist) { hist->n = 0; }

void wx_history_fini(wx_history_t *hist) {
    free(hist->e);
    hist->e = NULL;
    hist->n = hist->cap = 0;
}
