/* mapfile.h — read-only memory map of a whole file. */
#ifndef SLUICE_CORE_MAPFILE_H
#define SLUICE_CORE_MAPFILE_H
#include "sluice/sluice.h"

typedef struct mapfile {
    const uint8_t *data; /* file bytes; NULL for an empty file */
    size_t size;
} mapfile;

/* Maps path read-only. On failure fills err (naming the path) and leaves
 * *m zeroed. Release with mapfile_close. */
sluice_status mapfile_open(mapfile *m, const char *path, sluice_error *err);
void mapfile_close(mapfile *m); /* accepts a zeroed map */
#endif
