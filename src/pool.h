/*
 * pool.h: arenas. Everything a cycle, a connection or a request allocates
 * comes from its pool and is freed in one call. Descriptors and other
 * resources register a cleanup that runs when the pool is reset or freed.
 *
 * Pools are built from fixed-size blocks taken from a per-process free list,
 * so creating and destroying a request pool on the hot path costs no
 * malloc once the process is warm. Allocations larger than a block are
 * malloc'ed separately and freed with the pool.
 *
 * Out of memory: every allocator returns NULL; callers check.
 */
#ifndef PT_POOL_H
#define PT_POOL_H

#include "core.h"

#define PT_POOL_BLOCK 4096

struct pt_pool;

typedef void (*pt_cleanup_fn)(void *data);

/* A new empty pool, or NULL. */
struct pt_pool *pt_pool_create(void);
/* Run the cleanups, free large allocations, return all blocks. */
void pt_pool_destroy(struct pt_pool *p);
/* As destroy, but keep the pool and its first block for reuse. */
void pt_pool_reset(struct pt_pool *p);

void *pt_palloc(struct pt_pool *p, size_t size);  /* aligned to 16 */
void *pt_pcalloc(struct pt_pool *p, size_t size); /* zeroed */
void *pt_pnalloc(struct pt_pool *p, size_t size); /* unaligned, for text */
char *pt_pstrdup(struct pt_pool *p, const char *s);
char *pt_pstrndup(struct pt_pool *p, const char *s, size_t n);
char *pt_psprintf(struct pt_pool *p, const char *fmt, ...) PT_PRINTF(2, 3);

/* Run fn(data) when the pool is reset or destroyed (LIFO). PT_OK/PT_ERROR. */
int pt_pool_cleanup_add(struct pt_pool *p, pt_cleanup_fn fn, void *data);

/* Bytes held by the pool (blocks and large allocations), for tests. */
size_t pt_pool_size(const struct pt_pool *p);

/*
 * The block free list behind pools, usable directly for other fixed-size
 * buffers (a connection's header buffer). Blocks are PT_POOL_BLOCK bytes.
 */
void *pt_block_get(void);
void pt_block_put(void *block);
/* Give back a buffer that is a block (size PT_POOL_BLOCK) or grew past
 * one with malloc (any other size). */
void pt_block_release(void *p, size_t size);
/* Free every cached block (tests, and a worker's exit). */
void pt_block_trim(void);

#endif
