/*
 * shm.c: shared memory zones and their slab allocator.
 *
 * Zone layout (all offsets, no pointers inside, so a zone is valid at any
 * address, although in practice every process maps it at the same one):
 *
 *   struct shm_hdr | struct shm_page[npages] | pad to 4 KiB | pages
 *
 * Every 4 KiB page has a descriptor. A page is either part of a free run,
 * a page of small objects of one size class (16 .. 2048 bytes, a bitmap
 * of the slots in its descriptor), or part of a large allocation (a run
 * of whole pages). Free runs are kept in one list, first fit, and merged
 * with their free neighbours when freed: the first and the last page of a
 * free run both record its length. Pages of small objects with a free
 * slot are listed per class.
 *
 * Invariants, checked by PT_ASSERT where cheap: a run's head and tail
 * agree on its length; a small page is on its class list exactly when it
 * has a free slot; nfree equals the zero bits of the bitmap.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "log.h"
#include "pool.h"
#include "shm.h"

#include <errno.h>
#include <pthread.h>
#include <sys/mman.h>

#define SHM_PAGE 4096
#define SHM_MAGIC 0x70747368u /* "ptsh" */
#define SHM_NIL UINT32_MAX
#define SHM_MIN_SHIFT 4   /* 16 bytes */
#define SHM_MAX_SHIFT 11  /* 2048 bytes */
#define SHM_CLASSES (SHM_MAX_SHIFT - SHM_MIN_SHIFT + 1)

enum { PAGE_FREE_HEAD = 1, PAGE_FREE_TAIL, PAGE_FREE_MID, PAGE_SMALL,
       PAGE_LARGE, PAGE_LARGE_MID };

struct shm_page {
	uint32_t next, prev; /* free-run list or class list */
	uint16_t kind;
	uint16_t cls;
	uint32_t run;   /* pages in the run (free head/tail, large head) */
	uint32_t nfree; /* small: free slots */
	uint64_t used[4]; /* small: slot bitmap (256 slots of 16 bytes) */
};

struct shm_hdr {
	uint32_t magic;
	uint32_t npages;
	pthread_mutex_t lock;
	size_t size;
	size_t data_off; /* offset of the first page from the header */
	uint32_t free_runs;
	uint32_t partial[SHM_CLASSES];
	size_t free_pages;
	size_t used_bytes, allocs, frees, failures;
	void *user;
	struct shm_page pages[];
};

static struct shm_hdr *
shm_hdr(struct pt_shm_zone *z)
{
	return z->addr;
}

static char *
shm_page_addr(struct shm_hdr *h, uint32_t i)
{
	return (char *)h + h->data_off + (size_t)i * SHM_PAGE;
}

/* ---- lists ----------------------------------------------------------- */

static void
shm_list_push(struct shm_hdr *h, uint32_t *head, uint32_t i)
{
	struct shm_page *p = &h->pages[i];

	p->prev = SHM_NIL;
	p->next = *head;
	if (*head != SHM_NIL)
		h->pages[*head].prev = i;
	*head = i;
}

static void
shm_list_remove(struct shm_hdr *h, uint32_t *head, uint32_t i)
{
	struct shm_page *p = &h->pages[i];

	if (p->prev != SHM_NIL)
		h->pages[p->prev].next = p->next;
	else
		*head = p->next;
	if (p->next != SHM_NIL)
		h->pages[p->next].prev = p->prev;
	p->next = p->prev = SHM_NIL;
}

/* ---- page runs ------------------------------------------------------- */

static void
shm_mark_free(struct shm_hdr *h, uint32_t i, uint32_t n)
{
	for (uint32_t k = 1; k + 1 < n; k++)
		h->pages[i + k].kind = PAGE_FREE_MID;
	h->pages[i].kind = PAGE_FREE_HEAD;
	h->pages[i].run = n;
	if (n > 1) {
		h->pages[i + n - 1].kind = PAGE_FREE_TAIL;
		h->pages[i + n - 1].run = n;
	}
	shm_list_push(h, &h->free_runs, i);
}

static uint32_t
shm_run_alloc(struct shm_hdr *h, uint32_t n)
{
	for (uint32_t i = h->free_runs; i != SHM_NIL; i = h->pages[i].next) {
		uint32_t run = h->pages[i].run;
		if (run < n)
			continue;
		shm_list_remove(h, &h->free_runs, i);
		if (run > n)
			shm_mark_free(h, i + n, run - n);
		h->free_pages -= n;
		return i;
	}
	return SHM_NIL;
}

static void
shm_run_free(struct shm_hdr *h, uint32_t i, uint32_t n)
{
	h->free_pages += n;
	/* merge with the free run just before */
	if (i > 0) {
		struct shm_page *prev = &h->pages[i - 1];
		if (prev->kind == PAGE_FREE_HEAD || prev->kind == PAGE_FREE_TAIL) {
			uint32_t head = prev->kind == PAGE_FREE_HEAD
						? i - 1
						: i - prev->run;
			PT_ASSERT(h->pages[head].kind == PAGE_FREE_HEAD);
			shm_list_remove(h, &h->free_runs, head);
			n += h->pages[head].run;
			h->pages[i - 1].kind = PAGE_FREE_MID;
			i = head;
		}
	}
	/* and with the one just after */
	if (i + n < h->npages && h->pages[i + n].kind == PAGE_FREE_HEAD) {
		uint32_t next = i + n;
		shm_list_remove(h, &h->free_runs, next);
		n += h->pages[next].run;
		h->pages[next].kind = PAGE_FREE_MID;
	}
	shm_mark_free(h, i, n);
}

/* ---- small objects --------------------------------------------------- */

static unsigned
shm_class(size_t size)
{
	unsigned shift = SHM_MIN_SHIFT;

	while (((size_t)1 << shift) < size)
		shift++;
	return shift - SHM_MIN_SHIFT;
}

static void *
shm_small_alloc(struct shm_hdr *h, unsigned cls)
{
	uint32_t i = h->partial[cls];
	size_t size = (size_t)1 << (cls + SHM_MIN_SHIFT);
	unsigned slots = SHM_PAGE / (unsigned)size;
	struct shm_page *p;

	if (i == SHM_NIL) {
		i = shm_run_alloc(h, 1);
		if (i == SHM_NIL)
			return NULL;
		p = &h->pages[i];
		memset(p->used, 0, sizeof(p->used));
		/* slots past the page's end count as used */
		for (unsigned s = slots; s < 256; s++)
			p->used[s / 64] |= (uint64_t)1 << (s % 64);
		p->kind = PAGE_SMALL;
		p->cls = (uint16_t)cls;
		p->run = 1;
		p->nfree = slots;
		shm_list_push(h, &h->partial[cls], i);
	}
	p = &h->pages[i];
	for (unsigned w = 0; w < 4; w++) {
		uint64_t free_bits = ~p->used[w];
		unsigned bit;
		if (free_bits == 0)
			continue;
		bit = (unsigned)__builtin_ctzll(free_bits);
		p->used[w] |= (uint64_t)1 << bit;
		if (--p->nfree == 0)
			shm_list_remove(h, &h->partial[cls], i);
		return shm_page_addr(h, i) + (w * 64 + bit) * size;
	}
	PT_ASSERT(!"small page on the partial list without a free slot");
	return NULL;
}

static void
shm_small_free(struct shm_hdr *h, uint32_t i, size_t off)
{
	struct shm_page *p = &h->pages[i];
	size_t size = (size_t)1 << (p->cls + SHM_MIN_SHIFT);
	unsigned slots = SHM_PAGE / (unsigned)size, slot;

	PT_ASSERT(off % size == 0);
	slot = (unsigned)(off / size);
	PT_ASSERT(p->used[slot / 64] & ((uint64_t)1 << (slot % 64)));
	p->used[slot / 64] &= ~((uint64_t)1 << (slot % 64));
	if (p->nfree++ == 0)
		shm_list_push(h, &h->partial[p->cls], i);
	if (p->nfree == slots) {
		shm_list_remove(h, &h->partial[p->cls], i);
		shm_run_free(h, i, 1);
	}
}

/* ---- the allocator --------------------------------------------------- */

int
pt_shm_format(void *addr, size_t size)
{
	struct shm_hdr *h = addr;
	pthread_mutexattr_t a;
	size_t per = SHM_PAGE + sizeof(struct shm_page), npages;

	if (size < sizeof(*h) + 2 * per)
		return PT_ERROR;
	npages = (size - sizeof(*h) - SHM_PAGE) / per;
	memset(h, 0, sizeof(*h));
	h->magic = SHM_MAGIC;
	h->size = size;
	h->npages = (uint32_t)npages;
	h->data_off = PT_ALIGN(sizeof(*h) + npages * sizeof(struct shm_page),
			       SHM_PAGE);
	PT_ASSERT(h->data_off + npages * SHM_PAGE <= size);
	memset(h->pages, 0, npages * sizeof(struct shm_page));
	h->free_runs = SHM_NIL;
	for (unsigned c = 0; c < SHM_CLASSES; c++)
		h->partial[c] = SHM_NIL;
	h->free_pages = 0;
	shm_run_free(h, 0, h->npages);

	if (pthread_mutexattr_init(&a) != 0 ||
	    pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED) != 0 ||
	    pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST) != 0 ||
	    pthread_mutex_init(&h->lock, &a) != 0)
		return PT_ERROR;
	pthread_mutexattr_destroy(&a);
	return PT_OK;
}

int
pt_shm_lock(struct pt_shm_zone *z)
{
	struct shm_hdr *h = shm_hdr(z);
	int rc = pthread_mutex_lock(&h->lock);

	if (rc == 0)
		return PT_OK;
	if (rc == EOWNERDEAD) {
		pthread_mutex_consistent(&h->lock);
		pt_log(PT_LOG_WARN, 0,
		       "shared memory zone \"%s\": the lock holder died; "
		       "lock recovered",
		       z->name);
		return PT_SHM_RECOVERED;
	}
	pt_log(PT_LOG_CRIT, rc, "locking zone \"%s\"", z->name);
	return PT_ERROR;
}

void
pt_shm_unlock(struct pt_shm_zone *z)
{
	pthread_mutex_unlock(&shm_hdr(z)->lock);
}

void *
pt_shm_alloc_locked(struct pt_shm_zone *z, size_t size)
{
	struct shm_hdr *h = shm_hdr(z);
	void *p;

	if (size == 0)
		size = 1;
	if (size <= ((size_t)1 << SHM_MAX_SHIFT)) {
		unsigned cls = shm_class(size);
		size = (size_t)1 << (cls + SHM_MIN_SHIFT);
		p = shm_small_alloc(h, cls);
	} else {
		/* not (size + SHM_PAGE - 1) / SHM_PAGE: near SIZE_MAX that
		 * wraps to a run of 0 pages, handed out while still free */
		size_t n = size / SHM_PAGE + (size % SHM_PAGE != 0);
		uint32_t i = n <= h->npages ? shm_run_alloc(h, (uint32_t)n)
					    : SHM_NIL;
		size = n * SHM_PAGE;
		p = NULL;
		if (i != SHM_NIL) {
			h->pages[i].kind = PAGE_LARGE;
			h->pages[i].run = (uint32_t)n;
			for (uint32_t k = 1; k < n; k++)
				h->pages[i + k].kind = PAGE_LARGE_MID;
			p = shm_page_addr(h, i);
		}
	}
	if (p == NULL) {
		h->failures++;
		return NULL;
	}
	h->allocs++;
	h->used_bytes += size;
	return p;
}

void
pt_shm_free_locked(struct pt_shm_zone *z, void *ptr)
{
	struct shm_hdr *h = shm_hdr(z);
	size_t off;
	uint32_t i;
	struct shm_page *p;

	if (ptr == NULL)
		return;
	off = (size_t)((char *)ptr - shm_page_addr(h, 0));
	i = (uint32_t)(off / SHM_PAGE);
	PT_ASSERT(i < h->npages);
	p = &h->pages[i];
	h->frees++;
	if (p->kind == PAGE_SMALL) {
		h->used_bytes -= (size_t)1 << (p->cls + SHM_MIN_SHIFT);
		shm_small_free(h, i, off % SHM_PAGE);
		return;
	}
	PT_ASSERT(p->kind == PAGE_LARGE && off % SHM_PAGE == 0);
	h->used_bytes -= (size_t)p->run * SHM_PAGE;
	shm_run_free(h, i, p->run);
}

void *
pt_shm_alloc(struct pt_shm_zone *z, size_t size)
{
	void *p;

	if (pt_shm_lock(z) == PT_ERROR)
		return NULL;
	p = pt_shm_alloc_locked(z, size);
	pt_shm_unlock(z);
	return p;
}

void *
pt_shm_calloc(struct pt_shm_zone *z, size_t size)
{
	void *p = pt_shm_alloc(z, size);

	if (p != NULL)
		memset(p, 0, size);
	return p;
}

void
pt_shm_free(struct pt_shm_zone *z, void *p)
{
	if (pt_shm_lock(z) == PT_ERROR)
		return;
	pt_shm_free_locked(z, p);
	pt_shm_unlock(z);
}

void **
pt_shm_user(struct pt_shm_zone *z)
{
	return &shm_hdr(z)->user;
}

void
pt_shm_stats(struct pt_shm_zone *z, struct pt_shm_stats *st)
{
	struct shm_hdr *h = shm_hdr(z);

	st->pages = h->npages;
	st->free_pages = h->free_pages;
	st->used_bytes = h->used_bytes;
	st->allocs = h->allocs;
	st->frees = h->frees;
	st->failures = h->failures;
}

/* ---- the registry ---------------------------------------------------- */

struct pt_shm_zone *
pt_shm_zone_add(struct pt_conf *cf, const char *name, size_t size,
		pt_shm_init_fn init, void *data)
{
	struct pt_cycle *c = cf->cycle;
	struct pt_shm_zone *z;

	size = PT_ALIGN(size, SHM_PAGE);
	if (size < PT_SHM_MIN_SIZE) {
		pt_conf_error(cf, NULL,
			      "shared memory zone \"%s\" is too small: %zu "
			      "bytes (at least %d)",
			      name, size, PT_SHM_MIN_SIZE);
		return NULL;
	}
	for (z = c->zones; z != NULL; z = z->next) {
		if (strcmp(z->name, name) != 0)
			continue;
		if (z->size != size) {
			pt_conf_error(cf, NULL,
				      "shared memory zone \"%s\" is declared "
				      "with two sizes (%zu and %zu)",
				      name, z->size, size);
			return NULL;
		}
		return z;
	}
	z = pt_pcalloc(cf->pool, sizeof(*z));
	if (z == NULL || (z->name = pt_pstrdup(cf->pool, name)) == NULL)
		return NULL;
	z->size = size;
	z->init = init;
	z->data = data;
	z->next = c->zones;
	c->zones = z;
	return z;
}

static struct pt_shm_zone *
shm_find_old(struct pt_cycle *old, const struct pt_shm_zone *z)
{
	for (struct pt_shm_zone *o = old ? old->zones : NULL; o; o = o->next)
		if (!o->taken && o->addr != NULL && o->size == z->size &&
		    strcmp(o->name, z->name) == 0)
			return o;
	return NULL;
}

int
pt_shm_open(struct pt_cycle *c, struct pt_cycle *old)
{
	for (struct pt_shm_zone *z = c->zones; z != NULL; z = z->next) {
		struct pt_shm_zone *o = shm_find_old(old, z);
		int reused = o != NULL;

		if (o != NULL) {
			z->addr = o->addr;
			z->origin = o;
			o->taken = 1;
		} else {
			void *m = mmap(NULL, z->size, PROT_READ | PROT_WRITE,
				       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
			if (m == MAP_FAILED) {
				pt_log(PT_LOG_CRIT, errno,
				       "mmap of zone \"%s\" (%zu bytes)",
				       z->name, z->size);
				return PT_ERROR;
			}
			z->addr = m;
			if (pt_shm_format(m, z->size) != PT_OK) {
				pt_log(PT_LOG_CRIT, 0, "zone \"%s\": setup",
				       z->name);
				return PT_ERROR;
			}
		}
		if (z->init != NULL && z->init(z, z->data, reused) != PT_OK)
			return PT_ERROR;
	}
	return PT_OK;
}

void
pt_shm_abort(struct pt_cycle *c)
{
	for (struct pt_shm_zone *z = c->zones; z != NULL; z = z->next) {
		if (z->origin != NULL) {
			z->origin->taken = 0;
			z->origin = NULL;
			z->addr = NULL;
		}
	}
	pt_shm_close(c);
}

void
pt_shm_close(struct pt_cycle *c)
{
	for (struct pt_shm_zone *z = c->zones; z != NULL; z = z->next) {
		if (z->taken || z->addr == NULL)
			continue;
		munmap(z->addr, z->size);
		z->addr = NULL;
	}
}
