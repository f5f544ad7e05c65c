/* cmd_info.c — `sluice info`: what a GGUF file holds and what it needs. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"
#ifdef SLUICE_HAVE_VULKAN
#include "engine/forward_vk.h"
#endif

static void print_str(FILE *f, gguf_str s, size_t max) {
    fputc('"', f);
    for (uint64_t i = 0; i < s.len && i < max; i++) {
        unsigned char ch = (unsigned char)s.ptr[i];
        if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
        else if (ch == '\n') fputs("\\n", f);
        else if (ch < 0x20) fprintf(f, "\\x%02x", ch);
        else fputc(ch, f);
    }
    fputc('"', f);
    if (s.len > max) fprintf(f, "... (%llu bytes)", (unsigned long long)s.len);
}

static void print_value(FILE *f, const gguf_value *v) {
    switch (v->type) {
    case GGUF_T_U8: case GGUF_T_U16: case GGUF_T_U32: case GGUF_T_U64: fprintf(f, "%llu", (unsigned long long)v->u); break;
    case GGUF_T_I8: case GGUF_T_I16: case GGUF_T_I32: case GGUF_T_I64: fprintf(f, "%lld", (long long)v->i); break;
    case GGUF_T_F32: case GGUF_T_F64: fprintf(f, "%g", v->f); break;
    case GGUF_T_BOOL: fputs(v->b ? "true" : "false", f); break;
    case GGUF_T_STRING: print_str(f, v->s, 120); break;
    case GGUF_T_ARRAY: {
        fprintf(f, "[%s x %llu]", gguf_vtype_name(v->arr.elem), (unsigned long long)v->arr.n);
        uint64_t show = v->arr.n < 4 ? v->arr.n : 4;
        fputs(" ", f);
        for (uint64_t i = 0; i < show; i++) {
            if (i) fputs(", ", f);
            if (gguf_vtype_size(v->arr.elem)) {
                if (v->arr.elem == GGUF_T_F32 || v->arr.elem == GGUF_T_F64) fprintf(f, "%g", gguf_arr_f64(v, i));
                else fprintf(f, "%lld", (long long)gguf_arr_i64(v, i));
            } else if (v->arr.elem == GGUF_T_STRING) print_str(f, v->arr.items[i].s, 24);
            else fputs("[...]", f);
        }
        if (v->arr.n > show) fputs(", ...", f);
        break;
    }
    default: fputs("?", f);
    }
}

int cmd_info(int argc, char **argv) {
    cli_opts o = {0};
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fprintf(stderr, "usage: sluice info [MODEL.gguf | -m MODEL] [--ctx N] [--kv f16|f32]\n");
            return 0;
        }
        if (argv[i][0] == '-') { fprintf(stderr, "sluice info: unknown option '%s'\n", argv[i]); return 2; }
        o.model = argv[i];
    }
    char buf[4096];
    const char *path = cli_model_path(&o, buf, sizeof buf);
    if (!path) return 1;
    sluice_error err = {0};
    gguf_file *g;
    if (gguf_open(&g, path, &err)) { fprintf(stderr, "sluice: %s\n", err.msg); return 1; }
    printf("file: %s\nformat: GGUF v%u, %llu metadata keys, %llu tensors, alignment %u, data at byte %llu\n", path,
           g->version, (unsigned long long)g->n_kv, (unsigned long long)g->n_tensors, g->alignment,
           (unsigned long long)g->data_offset);
    printf("\nmetadata:\n");
    for (uint64_t i = 0; i < g->n_kv; i++) {
        char k[256];
        printf("  %-44s = ", gguf_str_copy(g->kv[i].key, k, sizeof k));
        print_value(stdout, &g->kv[i].val);
        printf("\n");
    }
    uint64_t count[QT_COUNT] = {0}, bytes[QT_COUNT] = {0}, params = 0, total = 0;
    for (uint64_t i = 0; i < g->n_tensors; i++) {
        count[g->tensors[i].type]++;
        bytes[g->tensors[i].type] += g->tensors[i].n_bytes;
        params += g->tensors[i].n_elements;
        total += g->tensors[i].n_bytes;
    }
    printf("\ntensor types:\n");
    for (int t = 0; t < QT_COUNT; t++)
        if (count[t])
            printf("  %-8s %5llu tensors %10.2f MiB%s\n", qtype_get((uint32_t)t)->name, (unsigned long long)count[t],
                   bytes[t] / 1048576.0, qtype_get((uint32_t)t)->compute ? "" : "  (not computable by sluice)");
    printf("parameters: %llu (%.2f M), weights %.2f MiB, %.2f bits per weight\n", (unsigned long long)params, params / 1e6,
           total / 1048576.0, params ? 8.0 * total / params : 0.0);

    model *m;
    if (model_from_gguf(&m, g, path, &err)) {
        printf("\nmodel: cannot run: %s\n", err.msg);
        return 1;
    }
    const model_hparams *hp = &m->hp;
    printf("\nmodel: %s, %u layers, width %u, ffn %u, heads %u (kv %u, head size %u), vocab %u, context %u%s\n",
           m->arch->name, hp->n_layer, hp->n_embd, hp->n_ff, hp->n_head, hp->n_head_kv, hp->head_dim, hp->n_vocab,
           hp->n_ctx_train, m->tied_output ? ", tied output" : "");
    printf("rope: %s, %u dims, base %g%s", m->arch->rope == ROPE_NEOX ? "neox" : "normal", hp->n_rot, hp->rope_base,
           hp->scaling == ROPE_SCALING_NONE ? "\n" : "");
    if (hp->scaling != ROPE_SCALING_NONE)
        printf(", %s scaling x%g\n", hp->scaling == ROPE_SCALING_YARN ? "yarn" : "linear", 1.0 / hp->rope_freq_scale);
    uint32_t n_ctx = o.ctx ? o.ctx : (hp->n_ctx_train > 4096 ? 4096 : hp->n_ctx_train);
    size_t run = fwd_estimate_bytes(m, n_ctx, 0, o.kv, o.threads);
    printf("memory (CPU, context %u, %s KV): weights %.2f MiB mapped + KV cache and scratch %.2f MiB = %.2f MiB\n", n_ctx,
           o.kv == KV_F32 ? "F32" : "F16", m->weight_bytes / 1048576.0, run / 1048576.0,
           (m->weight_bytes + run) / 1048576.0);
#ifdef SLUICE_HAVE_VULKAN
    /* the same context on each Vulkan device: what vkf_create would ask of
     * its device-local memory */
    vk_instance *inst = NULL;
    sluice_error verr = {0};
    if (vk_instance_create(&inst, false, &verr) == SLUICE_OK) {
        vkf_estimate e = vkf_estimate_bytes(m, n_ctx, o.kv, 0);
        uint64_t need = e.weights + e.kv_cache + e.scratch;
        for (uint32_t i = 0; i < vk_instance_device_count(inst); i++) {
            const vk_device_info *d = vk_instance_device(inst, 0) + i;
            uint64_t local = 0;
            for (uint32_t h = 0; h < d->n_heaps; h++) local += d->heaps[h].device_local ? d->heaps[h].size : 0;
            printf("memory (Vulkan device %u, %s): weights %.2f MiB + KV cache %.2f MiB + scratch %.2f MiB = %.2f "
                   "MiB of %.0f MiB device-local: %s\n",
                   i, d->name, e.weights / 1048576.0, e.kv_cache / 1048576.0, e.scratch / 1048576.0, need / 1048576.0,
                   local / 1048576.0, !d->usable ? "device older than Vulkan 1.2" : need <= local ? "fits" : "does not fit");
        }
        vk_instance_destroy(inst);
    } else {
        printf("memory (Vulkan): no devices (%s)\n", verr.msg);
    }
#endif
    model_free(m);
    return 0;
}
