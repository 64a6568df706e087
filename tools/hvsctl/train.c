/* hvsctl train: ask hvs-trainer to train a model now (POST <trainer>/train?name=...). */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hvsctl.h"

static const char *const help =
    "Usage: hvsctl train NAME|all [--trainer URL]\n"
    "\n"
    "Asks hvs-trainer to train NAME (e.g. forecast/global, anomaly-residual/archetype:passive)\n"
    "or every model due (all) now, instead of waiting for its schedule. The trainer publishes the\n"
    "new version on `models` when the run is done; watch it with `hvsctl model list`.\n"
    "  --trainer URL   the trainer's HTTP address (its HVS_HTTP_PORT; default\n"
    "                  http://127.0.0.1:8080)\n"
    "HVS_HTTP_ADMIN_TOKEN (environment or --config file), when set, is sent as\n"
    "\"Authorization: Bearer\"; the trainer requires it when it has one configured.\n";

static size_t sink(char *p, size_t size, size_t n, void *opaque) {
    FILE *out = opaque;
    return fwrite(p, size, n, out);
}

int hvsctl_train(hvs_app_t *app, int argc, char **argv) {
    if (hvsctl_wants_help(argc, argv)) {
        fputs(help, stdout);
        return 0;
    }
    const char *name = NULL, *trainer = "http://127.0.0.1:8080";
    for (int i = 0; i < argc; i++) { /* the arguments after "train" */
        if (strcmp(argv[i], "--trainer") == 0 && i + 1 < argc)
            trainer = argv[++i];
        else if (argv[i][0] != '-' && !name)
            name = argv[i];
        else {
            fprintf(stderr, "hvsctl train: unexpected argument %s\n%s", argv[i], help);
            return 2;
        }
    }
    if (!name || !*name) {
        fprintf(stderr, "hvsctl train: which model? (a name or all)\n%s", help);
        return 2;
    }
    if (strncmp(trainer, "http://", 7) != 0 && strncmp(trainer, "https://", 8) != 0) {
        fprintf(stderr, "hvsctl train: --trainer %s is not an http(s) URL\n", trainer);
        return 2;
    }
    CURL *c = curl_easy_init();
    if (!c) {
        fprintf(stderr, "hvsctl train: curl init failed\n");
        return 1;
    }
    char *esc = curl_easy_escape(c, name, 0);
    size_t len = strlen(trainer) + strlen(esc ? esc : "") + 32;
    char *url = malloc(len);
    int rc = 1;
    bool ok = esc && url;
    /* the header is built here rather than with CURLOPT_XOAUTH2_BEARER, which libcurl sends only
     * when CURLOPT_HTTPAUTH names CURLAUTH_BEARER: one obvious line instead of two settings */
    const char *token = app->cfg.http_admin_token;
    struct curl_slist *headers = NULL;
    char *auth = NULL;
    if (token && *token) {
        size_t alen = strlen(token) + 32;
        auth = malloc(alen);
        if (auth) {
            snprintf(auth, alen, "Authorization: Bearer %s", token);
            headers = curl_slist_append(NULL, auth);
        }
        if (!headers)
            ok = false;
    }
    if (!ok)
        fprintf(stderr, "hvsctl train: out of memory\n");
    if (ok) {
        bool slash = trainer[strlen(trainer) - 1] == '/';
        snprintf(url, len, "%s%strain?name=%s", trainer, slash ? "" : "/", esc);
        curl_easy_setopt(c, CURLOPT_URL, url);
        curl_easy_setopt(c, CURLOPT_POST, 1L);
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
        if (headers)
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, sink);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, stdout);
        CURLcode e = curl_easy_perform(c);
        long status = 0;
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
        if (e != CURLE_OK)
            fprintf(stderr, "hvsctl train: %s: %s\n", url, curl_easy_strerror(e));
        else if (status == 401)
            fprintf(stderr,
                    "hvsctl train: %s answered 401: the trainer wants its "
                    "HVS_HTTP_ADMIN_TOKEN (%s)\n",
                    url, token && *token ? "the one sent is not it" : "unset here");
        else if (status == 403)
            fprintf(stderr,
                    "hvsctl train: %s answered 403: the trainer listens on all "
                    "interfaces without HVS_HTTP_ADMIN_TOKEN and takes no admin requests\n",
                    url);
        else if (status != 202)
            fprintf(stderr, "hvsctl train: %s answered %ld\n", url, status);
        else
            rc = 0;
    }
    curl_slist_free_all(headers);
    if (auth) {
        memset(auth, 0, strlen(auth));
        free(auth);
    }
    free(url);
    curl_free(esc);
    curl_easy_cleanup(c);
    return rc;
}
