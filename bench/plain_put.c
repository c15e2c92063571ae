/*
 * plain_put: the peer of so_put on a local backend, for bench/local_put.sh.
 *
 *   plain_put DIR COUNT SIZE
 *
 * Writes COUNT files of SIZE bytes into DIR (created if missing) with the
 * same durability and the same work per file as so_put on a local backend
 * (src/core/local_store.cpp, write_new_file):
 *   - a temporary file in the same directory (O_CREAT | O_EXCL, mode 0600),
 *   - MD5 and SHA-256 of the content (OpenSSL EVP, a context each per file),
 *   - write, fsync the file, fstat it,
 *   - renameat2(RENAME_NOREPLACE) to the final name,
 *   - fsync the directory.
 * The contents differ per file: the file's number overlays the first bytes.
 * Prints one line: "plain_put: COUNT files of SIZE bytes in S s: R files/s".
 *
 * Build: cc -O2 -o plain_put plain_put.c -lcrypto
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

static void die(const char *what, const char *name) {
    fprintf(stderr, "plain_put: %s %s: %s\n", what, name ? name : "", strerror(errno));
    exit(1);
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void digest(const EVP_MD *type, const unsigned char *data, size_t size, unsigned char *out) {
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    unsigned int len = 0;
    if (!ctx || EVP_DigestInit_ex(ctx, type, NULL) != 1 || EVP_DigestUpdate(ctx, data, size) != 1 ||
        EVP_DigestFinal_ex(ctx, out, &len) != 1) {
        fprintf(stderr, "plain_put: OpenSSL digest failed\n");
        exit(1);
    }
    EVP_MD_CTX_free(ctx);
}

static void write_all(int fd, const unsigned char *data, size_t size, const char *name) {
    while (size > 0) {
        ssize_t n = write(fd, data, size);
        if (n < 0) {
            if (errno == EINTR) continue;
            die("write", name);
        }
        data += n;
        size -= (size_t)n;
    }
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s DIR COUNT SIZE\n", argv[0]);
        return 2;
    }
    const char *dir_path = argv[1];
    long count = strtol(argv[2], NULL, 10);
    long size = strtol(argv[3], NULL, 10);
    if (count <= 0 || size < 16) {
        fprintf(stderr, "plain_put: COUNT must be positive and SIZE at least 16\n");
        return 2;
    }
    if (mkdir(dir_path, 0700) != 0 && errno != EEXIST) die("mkdir", dir_path);

    unsigned char *content = malloc((size_t)size);
    if (!content) die("malloc", NULL);
    for (long i = 0; i < size; ++i) content[i] = (unsigned char)(i * 131 + 7);
    unsigned char md5[EVP_MAX_MD_SIZE], sha256[EVP_MAX_MD_SIZE];
    unsigned long checksum = 0;  /* keeps the digests from being optimized away */
    char temp[64], name[64];

    double start = now();
    int dir = open(dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir < 0) die("open", dir_path);
    for (long i = 1; i <= count; ++i) {
        uint32_t n = (uint32_t)i;
        memcpy(content, &n, sizeof n);
        snprintf(temp, sizeof temp, ".tmp-%ld-%ld", (long)getpid(), i);
        snprintf(name, sizeof name, "%ld.bin", i);

        int fd = openat(dir, temp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) die("create", temp);
        digest(EVP_md5(), content, (size_t)size, md5);
        digest(EVP_sha256(), content, (size_t)size, sha256);
        checksum += md5[0] + sha256[0];
        write_all(fd, content, (size_t)size, temp);
        if (fsync(fd) != 0) die("fsync", temp);
        struct stat st;
        if (fstat(fd, &st) != 0) die("fstat", temp);
        if (renameat2(dir, temp, dir, name, RENAME_NOREPLACE) != 0) die("rename to", name);
        if (close(fd) != 0) die("close", temp);
        if (fsync(dir) != 0) die("fsync", dir_path);
    }
    close(dir);
    double elapsed = now() - start;

    printf("plain_put: %ld files of %ld bytes in %.3f s: %.1f files/s (digest sum %lu)\n", count, size, elapsed,
           count / elapsed, checksum % 1000);
    free(content);
    return 0;
}
