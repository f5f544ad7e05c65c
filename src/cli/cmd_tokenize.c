/* cmd_tokenize.c — `sluice tokenize`: print the token ids of a text. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

int cmd_tokenize(int argc, char **argv) {
    cli_opts o = {0};
    const char *text = NULL;
    bool no_bos = false, special = false, pieces = false;
    for (int i = 1; i < argc; i++) {
        int r = cli_common_opt(&o, argc, argv, &i);
        if (r < 0) return 2;
        if (r > 0) continue;
        if (!strcmp(argv[i], "--no-bos")) no_bos = true;
        else if (!strcmp(argv[i], "--parse-special")) special = true;
        else if (!strcmp(argv[i], "--pieces")) pieces = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fprintf(stderr, "usage: sluice tokenize [-m MODEL] [--no-bos] [--parse-special] [--pieces] TEXT\n");
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1]) {
            fprintf(stderr, "sluice tokenize: unknown option '%s'\n", argv[i]);
            return 2;
        } else if (text) {
            fprintf(stderr, "sluice tokenize: give the text as one argument (quote it)\n");
            return 2;
        } else text = argv[i];
    }
    if (!text) { fprintf(stderr, "usage: sluice tokenize [-m MODEL] [--no-bos] TEXT\n"); return 2; }
    /* only the vocabulary is needed: any GGUF with tokenizer metadata works,
     * vocab-only files and architectures the engine cannot run included */
    char buf[4096];
    const char *path = cli_model_path(&o, buf, sizeof buf);
    if (!path) return 1;
    gguf_file *g;
    tokenizer *tok = NULL;
    sluice_error err = {0};
    if (gguf_open(&g, path, &err) || tok_load(&tok, g, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        gguf_close(g);
        return 1;
    }
    gguf_close(g);
    int32_t *ids;
    size_t n;
    int rc = 0;
    if (tok_encode(tok, text, strlen(text), !no_bos && tok_add_bos_default(tok), false, special, &ids, &n, &err)) {
        fprintf(stderr, "sluice: %s\n", err.msg);
        rc = 1;
    } else {
        for (size_t i = 0; i < n; i++) {
            if (pieces) printf("%s%d:'%s'", i ? " " : "", ids[i], tok_piece(tok, ids[i]));
            else printf("%s%d", i ? " " : "", ids[i]);
        }
        printf("\n");
        free(ids);
    }
    tok_free(tok);
    return rc;
}
