/* shaders_registry.h — the SPIR-V of every shader variant, compiled from
 * shaders/<op>.comp at build time (cmake/sluice_shaders.cmake) and embedded
 * in the binary. Indexed by vk_shader_id (generated shaders_gen.h). */
#ifndef SLUICE_VK_SHADERS_REGISTRY_H
#define SLUICE_VK_SHADERS_REGISTRY_H
#include <stddef.h>
#include <stdint.h>
#include "shaders_gen.h"

typedef struct vk_shader_spv {
    const char *name;        /* variant id, e.g. "rms_norm_f32" */
    const char *source;      /* file under shaders/, e.g. "rms_norm.comp" */
    const char *defines;     /* -D list it was compiled with, space separated */
    const uint32_t *words;   /* SPIR-V words (static storage) */
    const size_t *n_words;   /* number of words */
} vk_shader_spv;

/* The generated table; every id below VK_SHADER_COUNT has an entry. */
extern const vk_shader_spv vk_shader_table[VK_SHADER_COUNT];

/* The variant `id`, or NULL when id is out of range. */
static inline const vk_shader_spv *vk_shader_get(vk_shader_id id) {
    return (unsigned)id < VK_SHADER_COUNT ? &vk_shader_table[id] : NULL;
}
#endif
