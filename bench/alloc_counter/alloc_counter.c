/* alloc_counter: an LD_PRELOAD library that counts a process's heap
 * allocations, for bench/compare --profile (allocations per message).
 *
 * It wraps malloc, calloc, realloc, aligned_alloc, posix_memalign, memalign
 * and free around glibc's __libc_* entry points (no dlsym: dlsym itself
 * allocates), counting calls and requested bytes with relaxed atomics. A
 * thread started from the constructor writes the totals to the file named by
 * ALLOC_COUNTER_FILE every 50 ms ("allocations frees bytes\n", rewritten in
 * place), so a benchmark reads the counts before and after a measurement and
 * takes the difference: start-up and shutdown are not in it. Without
 * ALLOC_COUNTER_FILE it only counts. Not for production: the counters are
 * shared cache lines every thread writes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

extern void* __libc_malloc(size_t);
extern void* __libc_calloc(size_t, size_t);
extern void* __libc_realloc(void*, size_t);
extern void* __libc_memalign(size_t, size_t);
extern void __libc_free(void*);

static atomic_ullong allocations, frees, bytes;

static inline void count(size_t n) {
  atomic_fetch_add_explicit(&allocations, 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&bytes, n, memory_order_relaxed);
}

void* malloc(size_t n) {
  count(n);
  return __libc_malloc(n);
}

void* calloc(size_t k, size_t n) {
  count(k * n);
  return __libc_calloc(k, n);
}

void* realloc(void* p, size_t n) {
  count(n);
  return __libc_realloc(p, n);
}

void* memalign(size_t align, size_t n) {
  count(n);
  return __libc_memalign(align, n);
}

void* aligned_alloc(size_t align, size_t n) {
  count(n);
  return __libc_memalign(align, n);
}

int posix_memalign(void** out, size_t align, size_t n) {
  if (align % sizeof(void*) != 0 || (align & (align - 1)) != 0) return EINVAL;
  count(n);
  void* p = __libc_memalign(align, n);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

void free(void* p) {
  if (p != NULL) atomic_fetch_add_explicit(&frees, 1, memory_order_relaxed);
  __libc_free(p);
}

static void* writer(void* arg) {
  int fd = (int)(long)arg;
  char line[96];
  const struct timespec period = {0, 50 * 1000 * 1000};
  for (;;) {
    int n = snprintf(line, sizeof line, "%llu %llu %llu\n",
                     (unsigned long long)atomic_load(&allocations),
                     (unsigned long long)atomic_load(&frees),
                     (unsigned long long)atomic_load(&bytes));
    /* Fixed width is not needed: the reader takes the first line only. */
    if (pwrite(fd, line, (size_t)n, 0) < 0) return NULL;
    nanosleep(&period, NULL);
  }
  return NULL;
}

__attribute__((constructor)) static void start(void) {
  const char* path = getenv("ALLOC_COUNTER_FILE");
  if (path == NULL || *path == '\0') return;
  /* Children (none expected) must not write the parent's file. */
  unsetenv("ALLOC_COUNTER_FILE");
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  pthread_t t;
  if (pthread_create(&t, NULL, writer, (void*)(long)fd) == 0) pthread_detach(t);
}
