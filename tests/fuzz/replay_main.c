/*
 * replay_main.c -- runs a fuzz target's LLVMFuzzerTestOneInput on every file of the
 * corpus directories (or files) named on the command line, in name order.  This is the
 * regression replay that ctest runs with the normal compiler; the libFuzzer build links
 * the same target with -fsanitize=fuzzer instead.
 *
 * Exit status: 0 when every input ran, 1 when no input was found (a wrong path must not
 * pass), and whatever the target's abort() gives on a failed invariant.  The input being
 * run is printed when the process dies on a signal, so the failing file is named.
 */
#include "fuzz_common.h"

#include <dirent.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static char replay_current[4096];

static void
replay_on_signal(int sig)
{
    static const char pre[] = "\nfuzz replay: died while running ";
    ssize_t w = write(2, pre, sizeof(pre) - 1);
    w = write(2, replay_current, strlen(replay_current));
    w = write(2, "\n", 1);
    (void) w;
    signal(sig, SIG_DFL);
    raise(sig);
}

static int
replay_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *) a, *(char *const *) b);
}

static int
replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    size_t n;
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap);
        }
    }
    fclose(f);
    snprintf(replay_current, sizeof(replay_current), "%s", path);
    /* the exact size, so ASan builds catch a read past the end */
    uint8_t *exact = (uint8_t *) fuzz_dup(buf, len);
    free(buf);
    LLVMFuzzerTestOneInput(exact, len);
    free(exact);
    return 0;
}

static int
replay_path(const char *path, int *count)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        (*count)++;
        return replay_file(path);
    }
    DIR *d = opendir(path);
    if (d == NULL) {
        perror(path);
        return -1;
    }
    char **names = NULL;
    size_t nn = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.') {
            continue;
        }
        names = realloc(names, (nn + 1) * sizeof(char *));
        names[nn++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, nn, sizeof(char *), replay_cmp);
    int rc = 0;
    for (size_t i = 0; i < nn; i++) {
        char full[4096];
        snprintf(full, sizeof(full), "%s/%s", path, names[i]);
        if (stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            (*count)++;
            if (replay_file(full) != 0) {
                rc = -1;
            }
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int
main(int argc, char **argv)
{
    signal(SIGABRT, replay_on_signal);
    signal(SIGSEGV, replay_on_signal);
    signal(SIGBUS, replay_on_signal);
    signal(SIGFPE, replay_on_signal);
    signal(SIGILL, replay_on_signal);
    if (LLVMFuzzerInitialize != NULL) {
        LLVMFuzzerInitialize(&argc, &argv);
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s <corpus dir or file>...\n", argv[0]);
        return 2;
    }
    int count = 0, rc = 0;
    for (int i = 1; i < argc; i++) {
        if (replay_path(argv[i], &count) != 0) {
            rc = 1;
        }
    }
    printf("replayed %d input(s)\n", count);
    if (count == 0) {
        fprintf(stderr, "no inputs found\n");
        return 1;
    }
    return rc;
}
