#include "hvs/embedded.h"

#include <string.h>

const struct hvs_embedded_file *hvs_embedded_find(const char *path) {
    for (size_t i = 0; i < hvs_embedded_files_count; i++)
        if (strcmp(hvs_embedded_files[i].path, path) == 0)
            return &hvs_embedded_files[i];
    return NULL;
}
