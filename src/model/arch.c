/* arch.c — the table of supported architectures and their feature flags.
 * Metadata keys are "<arch>.<suffix>" for all of them (see model.c). */
#include <string.h>
#include "model/model.h"

static const arch_desc archs[] = {
    {"llama", ROPE_NORMAL, false, false},
    {"qwen2", ROPE_NEOX, true, false},
    {"qwen3", ROPE_NEOX, false, true},
};

const arch_desc *arch_find(const char *name) {
    for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++)
        if (!strcmp(archs[i].name, name)) return &archs[i];
    return NULL;
}

const char *arch_supported_list(void) { return "llama, qwen2, qwen3"; }
