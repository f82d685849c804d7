/*
 * pool.c: arenas over fixed-size blocks.
 *
 * A pool is a chain of PT_POOL_BLOCK-sized blocks; the pool header lives in
 * the first one. Small allocations bump a pointer; one larger than a
 * quarter block goes to malloc and onto the pool's "large" list. Freed
 * blocks go back to a process-wide free list (each process is single
 * threaded), capped so an idle worker returns memory to the system.
 *
 * Invariant: p->last <= p->end for the current block; blocks are never
 * shared between pools.
 */
#include "core.h"
#include "pool.h"

#include <stdarg.h>

#define POOL_LARGE (PT_POOL_BLOCK / 4)
#define POOL_FREE_MAX 256 /* blocks cached: 1 MiB */

struct pool_block {
	struct pool_block *next;
	char *last;
	char *end;
};

struct pool_large {
	struct pool_large *next;
};

struct pool_cleanup {
	struct pool_cleanup *next;
	pt_cleanup_fn fn;
	void *data;
};

struct pt_pool {
	struct pool_block first; /* must stay first: blocks share layout */
	struct pool_block *current;
	struct pool_large *large;
	struct pool_cleanup *cleanups;
	size_t large_bytes;
};

struct free_block {
	struct free_block *next;
};

static struct free_block *pool_free;
static unsigned pool_nfree;

void *
pt_block_get(void)
{
	struct free_block *b = pool_free;

	if (b != NULL) {
		pool_free = b->next;
		pool_nfree--;
		return b;
	}
	return malloc(PT_POOL_BLOCK);
}

void
pt_block_put(void *block)
{
	struct free_block *b = block;

	if (block == NULL)
		return;
	if (pool_nfree >= POOL_FREE_MAX) {
		free(block);
		return;
	}
	b->next = pool_free;
	pool_free = b;
	pool_nfree++;
}

void
pt_block_release(void *p, size_t size)
{
	if (size == PT_POOL_BLOCK)
		pt_block_put(p);
	else
		free(p);
}

void
pt_block_trim(void)
{
	while (pool_free != NULL) {
		struct free_block *b = pool_free;
		pool_free = b->next;
		free(b);
	}
	pool_nfree = 0;
}

struct pt_pool *
pt_pool_create(void)
{
	struct pt_pool *p = pt_block_get();

	if (p == NULL)
		return NULL;
	p->first.next = NULL;
	p->first.last = (char *)p + PT_ALIGN(sizeof(*p), 16);
	p->first.end = (char *)p + PT_POOL_BLOCK;
	p->current = &p->first;
	p->large = NULL;
	p->cleanups = NULL;
	p->large_bytes = 0;
	return p;
}

static void
pool_release(struct pt_pool *p)
{
	struct pool_block *b, *next;

	/* cleanups first: they may still read pool memory */
	while (p->cleanups != NULL) {
		struct pool_cleanup *c = p->cleanups;
		p->cleanups = c->next;
		c->fn(c->data);
	}
	while (p->large != NULL) {
		struct pool_large *l = p->large;
		p->large = l->next;
		free(l);
	}
	p->large_bytes = 0;
	for (b = p->first.next; b != NULL; b = next) {
		next = b->next;
		pt_block_put(b);
	}
}

void
pt_pool_destroy(struct pt_pool *p)
{
	if (p == NULL)
		return;
	pool_release(p);
	pt_block_put(p);
}

void
pt_pool_reset(struct pt_pool *p)
{
	pool_release(p);
	p->first.next = NULL;
	p->first.last = (char *)p + PT_ALIGN(sizeof(*p), 16);
	p->current = &p->first;
}

static void *
pool_large(struct pt_pool *p, size_t size)
{
	size_t hdr = PT_ALIGN(sizeof(struct pool_large), 16);
	struct pool_large *l;

	if (size > SIZE_MAX - hdr)
		return NULL;
	l = malloc(hdr + size);
	if (l == NULL)
		return NULL;
	l->next = p->large;
	p->large = l;
	p->large_bytes += hdr + size;
	return (char *)l + hdr;
}

static void *
pool_alloc(struct pt_pool *p, size_t size, size_t align)
{
	struct pool_block *b = p->current;
	char *m;

	if (size > POOL_LARGE)
		return pool_large(p, size);
	m = (char *)PT_ALIGN((uintptr_t)b->last, align);
	if (m + size <= b->end) {
		b->last = m + size;
		return m;
	}
	b = pt_block_get();
	if (b == NULL)
		return NULL;
	b->next = NULL;
	b->end = (char *)b + PT_POOL_BLOCK;
	m = (char *)b + PT_ALIGN(sizeof(*b), 16);
	b->last = m + size;
	p->current->next = b;
	p->current = b;
	return m;
}

void *
pt_palloc(struct pt_pool *p, size_t size)
{
	return pool_alloc(p, size, 16);
}

void *
pt_pnalloc(struct pt_pool *p, size_t size)
{
	return pool_alloc(p, size, 1);
}

void *
pt_pcalloc(struct pt_pool *p, size_t size)
{
	void *m = pool_alloc(p, size, 16);

	if (m != NULL)
		memset(m, 0, size);
	return m;
}

char *
pt_pstrndup(struct pt_pool *p, const char *s, size_t n)
{
	char *d = pool_alloc(p, n + 1, 1);

	if (d == NULL)
		return NULL;
	memcpy(d, s, n);
	d[n] = '\0';
	return d;
}

char *
pt_pstrdup(struct pt_pool *p, const char *s)
{
	return pt_pstrndup(p, s, strlen(s));
}

char *
pt_psprintf(struct pt_pool *p, const char *fmt, ...)
{
	va_list ap;
	int n;
	char *d;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		return NULL;
	d = pool_alloc(p, (size_t)n + 1, 1);
	if (d == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(d, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return d;
}

int
pt_pool_cleanup_add(struct pt_pool *p, pt_cleanup_fn fn, void *data)
{
	struct pool_cleanup *c = pt_palloc(p, sizeof(*c));

	if (c == NULL)
		return PT_ERROR;
	c->fn = fn;
	c->data = data;
	c->next = p->cleanups;
	p->cleanups = c;
	return PT_OK;
}

size_t
pt_pool_size(const struct pt_pool *p)
{
	size_t n = p->large_bytes;

	for (const struct pool_block *b = &p->first; b != NULL; b = b->next)
		n += PT_POOL_BLOCK;
	return n;
}
