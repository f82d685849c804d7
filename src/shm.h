/*
 * shm.h: shared memory zones (DESIGN.md section 5).
 *
 * A zone is a named region of anonymous shared memory created by the
 * master before it forks the workers, so every worker maps it at the same
 * address. Modules declare zones at configuration time with a name and a
 * size; on reload a zone whose name and size are unchanged is carried
 * over with its contents (peer health, cache index, counters survive), a
 * new or resized one is created fresh.
 *
 * Each zone has a slab allocator (pt_shm_alloc/free: small objects in
 * size classes packed into 4 KiB pages, larger ones as page runs) and a
 * process-shared robust mutex: a worker killed while holding it does not
 * wedge the others; the next locker is told (PT_SHM_RECOVERED) so it can
 * repair what the dead one may have left half-done.
 */
#ifndef PT_SHM_H
#define PT_SHM_H

#include "core.h"

struct pt_conf;
struct pt_cycle;
struct pt_shm_zone;

/*
 * Called in the master when the zone is ready: data is the module's
 * pointer given at declaration; reused is 1 when the zone (and its
 * contents) came from the previous cycle. PT_OK or PT_ERROR.
 */
typedef int (*pt_shm_init_fn)(struct pt_shm_zone *z, void *data, int reused);

struct pt_shm_zone {
	const char *name;
	size_t size;         /* as declared */
	void *addr;          /* NULL until the cycle is opened */
	pt_shm_init_fn init;
	void *data;
	unsigned taken : 1;  /* carried over to a newer cycle */
	struct pt_shm_zone *origin; /* the zone of the old cycle reused */
	struct pt_shm_zone *next;
};

#define PT_SHM_MIN_SIZE (8 * 4096)

/*
 * Declare a zone in the cycle being configured. The same name declared
 * twice with the same size returns the same zone; with another size it is
 * an error. NULL on error (reported).
 */
struct pt_shm_zone *pt_shm_zone_add(struct pt_conf *cf, const char *name,
				    size_t size, pt_shm_init_fn init,
				    void *data);

/*
 * Map every zone of c, taking over those of old whose name and size
 * match, and run the init callbacks. PT_OK or PT_ERROR (logged).
 */
int pt_shm_open(struct pt_cycle *c, struct pt_cycle *old);

/* Undo pt_shm_open of a cycle that will not run: reused zones go back
 * to the old cycle, new ones are unmapped. */
void pt_shm_abort(struct pt_cycle *c);

/* Unmap the zones of c that no newer cycle took over. */
void pt_shm_close(struct pt_cycle *c);

/* Lock results. */
#define PT_SHM_RECOVERED 1 /* the previous owner died holding the lock */

/* Lock the zone: PT_OK, PT_SHM_RECOVERED, or PT_ERROR. */
int pt_shm_lock(struct pt_shm_zone *z);
void pt_shm_unlock(struct pt_shm_zone *z);

/* Allocate or free in the zone; the caller holds the lock. */
void *pt_shm_alloc_locked(struct pt_shm_zone *z, size_t size);
void pt_shm_free_locked(struct pt_shm_zone *z, void *p);

/* The same, taking the lock. pt_shm_alloc returns NULL when full. */
void *pt_shm_alloc(struct pt_shm_zone *z, size_t size);
void *pt_shm_calloc(struct pt_shm_zone *z, size_t size);
void pt_shm_free(struct pt_shm_zone *z, void *p);

/* A pointer the zone's user keeps at a fixed place (e.g. its root
 * structure); survives reuse across reloads. */
void **pt_shm_user(struct pt_shm_zone *z);

/* Statistics, for tests and the status module. */
struct pt_shm_stats {
	size_t pages, free_pages;
	size_t used_bytes; /* bytes of live allocations (class sizes) */
	size_t allocs, frees, failures;
};
void pt_shm_stats(struct pt_shm_zone *z, struct pt_shm_stats *st);

/*
 * Set up zone memory at addr of size bytes (what pt_shm_open does after
 * mmap); exposed for unit tests.
 */
int pt_shm_format(void *addr, size_t size);

#endif
