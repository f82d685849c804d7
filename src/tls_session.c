/*
 * tls_session.c: TLS session resumption shared by all workers.
 *
 * Session cache (zone "tls_session_cache"): OpenSSL's internal cache is
 * off (SSL_SESS_CACHE_NO_INTERNAL); its new/get/remove callbacks keep
 * i2d_SSL_SESSION bytes in the zone, in a hash table keyed by session id
 * and a queue in insertion order (head newest). A full zone evicts from
 * the tail; an expired entry is dropped when met and never returned.
 * The zone is mapped before the fork at the same address in every
 * process, so the links are plain pointers. A worker that dies holding
 * the lock may leave the links half-changed: every change sets root->busy
 * first, and whoever recovers the lock with busy set rebuilds the table
 * and the back links from the forward chain, walked with bounds and
 * checks (entries it cannot reach are lost, never followed).
 *
 * Ticket keys (zone "tls_ticket_keys"): a small array of keys (name,
 * AES-256-CBC key, HMAC-SHA256 key, creation time). Tickets are encrypted
 * with the newest; any key retired less than a ticket lifetime ago still
 * decrypts (the ticket is then renewed). The newest is replaced lazily,
 * under the lock, when it is older than the rotation period. A slot is
 * published by writing its state last, so a dead writer leaves at worst
 * an unused slot.
 *
 * Both zones keep their contents across a reload when their sizes are
 * unchanged. Times are pt_now.mono_ms (CLOCK_MONOTONIC is the same in
 * every process). pt_tls_sessions_setup() runs in the master at config
 * load; the callbacks run in the workers.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "log.h"
#include "pool.h"
#include "ptime.h"
#include "shm.h"
#include "tls_session.h"

#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#include <openssl/core_names.h>
#include <openssl/params.h>
#else
#include <openssl/hmac.h>
#endif

#define TLS_CACHE_ZONE "tls_session_cache"
#define TLS_KEYS_ZONE  "tls_ticket_keys"
#define TLS_ZONE_PAGE  4096
/* beyond this, the size is a mistake (and PT_ALIGN could overflow) */
#define TLS_CACHE_MAX  ((size_t)1 << 40)

#define TSC_MAGIC            0x74736372u /* "tscr" */
#define TSC_ENTRY_MAGIC      0x74736365u /* "tsce" */
#define TSC_ENTRY_SEEN       0x74736373u /* during a repair walk */
#define TSC_MAX_DER          4096        /* larger sessions are not kept */
#define TSC_BUCKET_BYTES     1024        /* zone bytes per hash bucket */
#define TSC_EXPIRE_PER_STORE 4

#define TK_MAGIC      0x74746b72u /* "ttkr" */
#define TK_KEYS       16
#define TK_NONE       UINT32_MAX
#define TK_FREE       0u
#define TK_VALID      0x76616c64u
#define TK_ROTATE_MIN ((int64_t)60 * 1000)
#define TK_ROTATE_MAX ((int64_t)3600 * 1000)

/* Per cycle: reached again through the data of its zones. */
struct tls_sess_cycle {
	struct pt_shm_zone *cache; /* NULL: no server has a cache */
	struct pt_shm_zone *keys;  /* NULL: no server has tickets */
	int64_t ticket_life_ms;    /* largest timeout of servers w/ tickets */
};

/*
 * Per SSL_CTX, in its ex_data. OpenSSL calls the session callbacks of
 * the context a session started with (its address's default server)
 * even after SNI moved it to another server's: every context has the
 * callbacks, and they follow the settings of the context the session is
 * in now (SSL_get_SSL_CTX).
 */
struct tls_sess_ctx {
	struct tls_sess_cycle *cy; /* NULL when neither is on */
	unsigned cache : 1;
	unsigned tickets : 1;
};

struct tsc_entry {
	uint32_t magic;
	uint32_t hash;
	struct tsc_entry *hnext;
	struct tsc_entry *prev, *next; /* queue, head newest */
	int64_t expire_ms;
	uint32_t len; /* of der */
	uint32_t id_len;
	unsigned char id[SSL_MAX_SSL_SESSION_ID_LENGTH];
	unsigned char der[];
};

struct tsc_root {
	uint32_t magic;
	uint32_t nbuckets; /* a power of 2 */
	uint32_t busy;     /* links being changed */
	size_t nentries;
	struct tsc_entry *head, *tail;
	uint64_t stores, hits, misses, evictions, expired, repairs;
	struct tsc_entry *buckets[];
};

struct tk_key {
	uint32_t state; /* TK_FREE or TK_VALID, written last */
	unsigned char name[16];
	unsigned char aes[32];
	unsigned char hmac[32];
	int64_t created_ms;
	int64_t retired_ms; /* 0: the newest */
};

struct tk_root {
	uint32_t magic;
	uint32_t newest; /* index, or TK_NONE */
	uint64_t rotations;
	struct tk_key keys[TK_KEYS];
};

static int tls_sess_index = -1;

static struct tls_sess_ctx *
tls_sess_of(SSL_CTX *ctx)
{
	if (ctx == NULL || tls_sess_index < 0)
		return NULL;
	return SSL_CTX_get_ex_data(ctx, tls_sess_index);
}

/* The cache zone, if the server ssl is with now keeps sessions. */
static struct pt_shm_zone *
tls_sess_cache_of(SSL_CTX *ctx)
{
	struct tls_sess_ctx *sc = tls_sess_of(ctx);

	return sc != NULL && sc->cache && sc->cy != NULL ? sc->cy->cache : NULL;
}

/* ---- the session cache: table and queue ------------------------------ */

static uint32_t
tsc_hash(const unsigned char *id, size_t len)
{
	uint32_t h = 2166136261u; /* FNV-1a */

	for (size_t i = 0; i < len; i++)
		h = (h ^ id[i]) * 16777619u;
	return h;
}

/* Whether e may be followed: inside the zone, whole, and an entry. */
static int
tsc_valid(const struct pt_shm_zone *z, const struct tsc_entry *e,
	  uint32_t magic)
{
	uintptr_t a = (uintptr_t)e, lo = (uintptr_t)z->addr;
	uintptr_t hi = lo + z->size;

	return a % 16 == 0 && a >= lo && a < hi && hi - a >= sizeof(*e) &&
	       e->magic == magic && e->id_len > 0 &&
	       e->id_len <= sizeof(e->id) && e->len <= TSC_MAX_DER &&
	       hi - a - sizeof(*e) >= e->len;
}

/* More links than entries fit in the zone: a cycle. */
static size_t
tsc_limit(const struct pt_shm_zone *z)
{
	return z->size / sizeof(struct tsc_entry) + 1;
}

static void tsc_repair(struct pt_shm_zone *z, struct tsc_root *root);

/*
 * The entry of id, or NULL. A link that leads out of the zone, to no
 * entry, or round in a cycle (another bug's scribble: a worker that
 * dies in a change is repaired by tsc_lock) gets the table rebuilt
 * rather than followed: a worker never loops or faults on the zone.
 */
static struct tsc_entry *
tsc_find(struct pt_shm_zone *z, struct tsc_root *root, const unsigned char *id,
	 size_t len, uint32_t hash)
{
	struct tsc_entry *e = root->buckets[hash & (root->nbuckets - 1)];

	for (size_t n = tsc_limit(z); e != NULL; e = e->hnext) {
		if (n-- == 0 || !tsc_valid(z, e, TSC_ENTRY_MAGIC)) {
			tsc_repair(z, root);
			return NULL;
		}
		if (e->hash == hash && e->id_len == len &&
		    memcmp(e->id, id, len) == 0)
			return e;
	}
	return NULL;
}

static int
tsc_linked(const struct pt_shm_zone *z, const struct tsc_entry *e)
{
	return e == NULL || tsc_valid(z, e, TSC_ENTRY_MAGIC);
}

/*
 * Unlink e (a valid entry) from the table and the queue and free it;
 * busy is set. PT_ERROR if the links around it are broken: the cache
 * was rebuilt instead (busy is clear again) and e may still be there.
 */
static int
tsc_drop(struct pt_shm_zone *z, struct tsc_root *root, struct tsc_entry *e)
{
	struct tsc_entry **pe = &root->buckets[e->hash & (root->nbuckets - 1)];
	size_t n = tsc_limit(z);

	while (*pe != NULL && *pe != e && n-- > 0 &&
	       tsc_valid(z, *pe, TSC_ENTRY_MAGIC))
		pe = &(*pe)->hnext;
	if (*pe != e || !tsc_linked(z, e->prev) || !tsc_linked(z, e->next)) {
		tsc_repair(z, root);
		return PT_ERROR;
	}
	*pe = e->hnext;
	if (e->prev != NULL)
		e->prev->next = e->next;
	else
		root->head = e->next;
	if (e->next != NULL)
		e->next->prev = e->prev;
	else
		root->tail = e->prev;
	root->nentries--;
	e->magic = 0;
	pt_shm_free_locked(z, e);
	return PT_OK;
}

/*
 * After a worker died holding the lock in the middle of a change, or a
 * broken link: keep what the forward chain from the head still reaches,
 * rebuild the rest.
 */
static void
tsc_repair(struct pt_shm_zone *z, struct tsc_root *root)
{
	size_t limit = tsc_limit(z), n = 0;
	struct tsc_entry *e, *prev = NULL;

	memset(root->buckets, 0, root->nbuckets * sizeof(root->buckets[0]));
	for (e = root->head; e != NULL && n < limit; e = e->next) {
		if (!tsc_valid(z, e, TSC_ENTRY_MAGIC))
			break; /* garbage, or met again: a cycle */
		e->magic = TSC_ENTRY_SEEN;
		e->hash = tsc_hash(e->id, e->id_len);
		e->prev = prev;
		e->hnext = root->buckets[e->hash & (root->nbuckets - 1)];
		root->buckets[e->hash & (root->nbuckets - 1)] = e;
		prev = e;
		n++;
	}
	if (prev != NULL)
		prev->next = NULL;
	else
		root->head = NULL;
	root->tail = prev;
	for (e = root->head; e != NULL; e = e->next)
		e->magic = TSC_ENTRY_MAGIC;
	root->nentries = n;
	root->repairs++;
	root->busy = 0;
	pt_log(PT_LOG_WARN, 0, "TLS session cache repaired: %zu sessions kept",
	       n);
}

/* Lock the cache: its root, or NULL (not locked) if it is unusable. */
static struct tsc_root *
tsc_lock(struct pt_shm_zone *z)
{
	int rc = pt_shm_lock(z);
	struct tsc_root *root;

	if (rc == PT_ERROR)
		return NULL;
	root = *pt_shm_user(z);
	if (root == NULL || root->magic != TSC_MAGIC) {
		pt_shm_unlock(z);
		return NULL;
	}
	if (rc == PT_SHM_RECOVERED && root->busy)
		tsc_repair(z, root);
	return root;
}

/* Drop the oldest entry if it is expired (or expired is 0). 1: dropped,
 * 0: none to drop, -1: the links were broken (the cache was rebuilt). */
static int
tsc_drop_tail(struct pt_shm_zone *z, struct tsc_root *root, int expired)
{
	struct tsc_entry *t = root->tail;

	if (t == NULL)
		return 0;
	if (!tsc_valid(z, t, TSC_ENTRY_MAGIC)) {
		tsc_repair(z, root);
		return -1;
	}
	if (expired && t->expire_ms > pt_now.mono_ms)
		return 0;
	return tsc_drop(z, root, t) == PT_OK ? 1 : -1;
}

static void
tsc_store(struct pt_shm_zone *z, const unsigned char *id, size_t id_len,
	  const unsigned char *der, size_t len, int64_t expire_ms)
{
	struct tsc_root *root = tsc_lock(z);
	uint32_t hash = tsc_hash(id, id_len);
	struct tsc_entry *e, **bucket;
	int rc = 1;

	if (root == NULL)
		return;
	e = tsc_find(z, root, id, id_len, hash);
	root->busy = 1;
	if (e != NULL && tsc_drop(z, root, e) != PT_OK)
		goto out; /* rebuilt: this one is not kept, the next is */
	for (unsigned i = 0; i < TSC_EXPIRE_PER_STORE && rc > 0; i++)
		if ((rc = tsc_drop_tail(z, root, 1)) > 0)
			root->expired++;
	if (rc < 0 || !tsc_linked(z, root->head))
		goto out;
	while ((e = pt_shm_alloc_locked(z, sizeof(*e) + len)) == NULL) {
		if ((rc = tsc_drop_tail(z, root, 0)) <= 0)
			goto out;
		root->evictions++;
	}
	memset(e, 0, sizeof(*e));
	e->magic = TSC_ENTRY_MAGIC;
	e->hash = hash;
	e->expire_ms = expire_ms;
	e->len = (uint32_t)len;
	e->id_len = (uint32_t)id_len;
	memcpy(e->id, id, id_len);
	memcpy(e->der, der, len);
	bucket = &root->buckets[hash & (root->nbuckets - 1)];
	e->hnext = *bucket;
	*bucket = e;
	e->next = root->head;
	if (root->head != NULL)
		root->head->prev = e;
	else
		root->tail = e;
	root->head = e;
	root->nentries++;
	root->stores++;
out:
	root->busy = 0;
	pt_shm_unlock(z);
}

/* ---- the session cache: OpenSSL's callbacks -------------------------- */

/* OpenSSL gives a new session the lifetime of the context it started
 * with (the address's default server): it takes that of the server
 * it is with now, before it is kept or sealed in a ticket. */
static void
tls_sess_lifetime(SSL *ssl, SSL_SESSION *sess)
{
	long t = SSL_CTX_get_timeout(SSL_get_SSL_CTX(ssl));

	if (sess != NULL && t > 0 && SSL_SESSION_get_timeout(sess) != t)
		(void)SSL_SESSION_set_timeout(sess, t);
}

/* Before a ticket is made (its lifetime hint is the session's). */
static int
tls_sess_ticket_gen(SSL *ssl, void *arg)
{
	(void)arg;
	tls_sess_lifetime(ssl, SSL_get_session(ssl));
	return 1;
}

static int
tsc_new_cb(SSL *ssl, SSL_SESSION *sess)
{
	struct pt_shm_zone *z = tls_sess_cache_of(SSL_get_SSL_CTX(ssl));
	unsigned char der[TSC_MAX_DER], *p = der;
	const unsigned char *id;
	unsigned int id_len;
	int len;

	if (z == NULL)
		return 0;
	/* TLS 1.3 with stateless tickets: OpenSSL offers the session to
	 * the cache too, but nobody will ask for it by id */
	if (SSL_version(ssl) >= TLS1_3_VERSION &&
	    (SSL_get_options(ssl) & SSL_OP_NO_TICKET) == 0)
		return 0;
	id = SSL_SESSION_get_id(sess, &id_len);
	if (id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH)
		return 0;
	tls_sess_lifetime(ssl, sess);
	len = i2d_SSL_SESSION(sess, NULL);
	if (len <= 0 || len > TSC_MAX_DER || i2d_SSL_SESSION(sess, &p) != len)
		return 0;
	tsc_store(z, id, id_len, der, (size_t)len,
		  pt_now.mono_ms +
			  (int64_t)SSL_SESSION_get_timeout(sess) * 1000);
	return 0; /* no reference kept */
}

static SSL_SESSION *
tsc_get_cb(SSL *ssl, const unsigned char *id, int id_len, int *copy)
{
	struct pt_shm_zone *z = tls_sess_cache_of(SSL_get_SSL_CTX(ssl));
	unsigned char der[TSC_MAX_DER];
	const unsigned char *p = der;
	struct tsc_root *root;
	struct tsc_entry *e;
	SSL_SESSION *sess;
	size_t len = 0;

	*copy = 0;
	if (z == NULL || id_len <= 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH)
		return NULL;
	if ((root = tsc_lock(z)) == NULL)
		return NULL;
	e = tsc_find(z, root, id, (size_t)id_len, tsc_hash(id, (size_t)id_len));
	if (e != NULL && e->expire_ms <= pt_now.mono_ms) {
		root->busy = 1;
		if (tsc_drop(z, root, e) == PT_OK)
			root->expired++;
		root->busy = 0;
		e = NULL;
	}
	if (e != NULL) {
		len = e->len;
		memcpy(der, e->der, len);
		root->hits++;
	} else {
		root->misses++;
	}
	pt_shm_unlock(z);
	if (len == 0)
		return NULL;
	/* garbage decodes to NULL: a miss. Its errors must not stay in
	 * the queue: SSL_get_error() would read them as this handshake's
	 * failure. */
	sess = d2i_SSL_SESSION(NULL, &p, (long)len);
	if (sess == NULL)
		ERR_clear_error();
	return sess;
}

static void
tsc_remove_cb(SSL_CTX *ctx, SSL_SESSION *sess)
{
	struct tls_sess_ctx *sc = tls_sess_of(ctx);
	struct pt_shm_zone *z;
	const unsigned char *id;
	unsigned int id_len;
	struct tsc_root *root;
	struct tsc_entry *e;

	/* ctx is the session's first context; the zone is the same for
	 * every context of the cycle, but a first context with neither a
	 * cache nor tickets does not know it: the entry then stays until
	 * it expires or is evicted */
	if (sc == NULL || sc->cy == NULL || (z = sc->cy->cache) == NULL)
		return;
	id = SSL_SESSION_get_id(sess, &id_len);
	if (id_len == 0 || id_len > SSL_MAX_SSL_SESSION_ID_LENGTH)
		return;
	if ((root = tsc_lock(z)) == NULL)
		return;
	e = tsc_find(z, root, id, id_len, tsc_hash(id, id_len));
	if (e != NULL) {
		root->busy = 1;
		(void)tsc_drop(z, root, e);
		root->busy = 0;
	}
	pt_shm_unlock(z);
}

static int
tsc_zone_init(struct pt_shm_zone *z, void *data, int reused)
{
	struct tsc_root *root = reused ? *pt_shm_user(z) : NULL;
	uint32_t nbuckets = 16;

	(void)data;
	if (root != NULL && root->magic == TSC_MAGIC)
		return PT_OK; /* the sessions survive the reload */
	while ((size_t)nbuckets * 2 * TSC_BUCKET_BYTES <= z->size)
		nbuckets *= 2;
	root = pt_shm_calloc(z, sizeof(*root) +
					nbuckets * sizeof(root->buckets[0]));
	if (root == NULL) {
		pt_log(PT_LOG_CRIT, 0, "zone \"%s\": no room for its table",
		       z->name);
		return PT_ERROR;
	}
	root->magic = TSC_MAGIC;
	root->nbuckets = nbuckets;
	*pt_shm_user(z) = root;
	return PT_OK;
}

/* ---- ticket keys ----------------------------------------------------- */

/* How long the newest key encrypts: the ticket lifetime within [1 min,
 * 1 h], longer if the keys kept for a long lifetime would not fit. */
static int64_t
tk_period(int64_t life)
{
	int64_t p = PT_MIN(PT_MAX(life, TK_ROTATE_MIN), TK_ROTATE_MAX);

	return PT_MAX(p, life / (TK_KEYS - 2) + 1);
}

static int
tk_usable(const struct tk_key *k, int64_t now, int64_t life)
{
	return k->state == TK_VALID &&
	       (k->retired_ms == 0 || now - k->retired_ms <= life);
}

static void
tk_clear(struct tk_key *k)
{
	k->state = TK_FREE;
	OPENSSL_cleanse(k, sizeof(*k));
}

/* A fresh newest key. PT_OK, or PT_ERROR with the old one still newest. */
static int
tk_rotate(struct tk_root *root, int64_t now, int64_t life)
{
	uint32_t slot = TK_NONE;
	struct tk_key *k;

	for (uint32_t i = 0; i < TK_KEYS; i++) {
		k = &root->keys[i];
		if (k->state == TK_VALID && i != root->newest &&
		    !tk_usable(k, now, life))
			tk_clear(k);
		if (k->state != TK_VALID && slot == TK_NONE)
			slot = i;
	}
	if (slot == TK_NONE) {
		/* lifetimes grew over reloads: the oldest retired goes */
		for (uint32_t i = 0; i < TK_KEYS; i++) {
			if (i == root->newest)
				continue;
			if (slot == TK_NONE ||
			    root->keys[i].retired_ms <
				    root->keys[slot].retired_ms)
				slot = i;
		}
		tk_clear(&root->keys[slot]);
	}
	k = &root->keys[slot];
	if (RAND_bytes(k->name, sizeof(k->name)) != 1 ||
	    RAND_bytes(k->aes, sizeof(k->aes)) != 1 ||
	    RAND_bytes(k->hmac, sizeof(k->hmac)) != 1) {
		tk_clear(k);
		/* the handshake in progress goes on with the old key: its
		 * SSL_get_error() must not find this in the queue */
		ERR_clear_error();
		return PT_ERROR;
	}
	k->created_ms = now;
	k->retired_ms = 0;
	__atomic_store_n(&k->state, TK_VALID, __ATOMIC_RELEASE);
	if (root->newest != TK_NONE)
		root->keys[root->newest].retired_ms = now;
	__atomic_store_n(&root->newest, slot, __ATOMIC_RELEASE);
	root->rotations++;
	return PT_OK;
}

/* After a worker died holding the lock: the newest is the latest valid
 * key not retired; other unretired ones retire now. */
static void
tk_repair(struct tk_root *root, int64_t now)
{
	uint32_t best = TK_NONE;

	for (uint32_t i = 0; i < TK_KEYS; i++) {
		struct tk_key *k = &root->keys[i];
		if (k->state != TK_VALID) {
			tk_clear(k);
			continue;
		}
		if (k->retired_ms == 0 &&
		    (best == TK_NONE ||
		     k->created_ms > root->keys[best].created_ms))
			best = i;
	}
	for (uint32_t i = 0; i < TK_KEYS; i++)
		if (i != best && root->keys[i].state == TK_VALID &&
		    root->keys[i].retired_ms == 0)
			root->keys[i].retired_ms = now;
	root->newest = best;
}

static struct tk_root *
tk_lock(struct pt_shm_zone *z, int64_t now)
{
	int rc = pt_shm_lock(z);
	struct tk_root *root;

	if (rc == PT_ERROR)
		return NULL;
	root = *pt_shm_user(z);
	if (root == NULL || root->magic != TK_MAGIC) {
		pt_shm_unlock(z);
		return NULL;
	}
	/* an index out of the array (a scribble) is never used as one */
	if (rc == PT_SHM_RECOVERED ||
	    (root->newest != TK_NONE && root->newest >= TK_KEYS))
		tk_repair(root, now);
	return root;
}

/*
 * The key for a ticket, copied into out: to encrypt (enc), the newest,
 * its name written to name; to decrypt, the one called name. 1: found
 * (the newest), 2: found, renew the ticket, 0: none. TLS 1.3 always
 * renews: its clients use a ticket once (RFC 8446 appendix C.4) and
 * OpenSSL sends a resumed session new tickets only when told to renew.
 */
static int
tk_select(SSL *ssl, unsigned char *name, struct tk_key *out, int enc)
{
	struct tls_sess_ctx *sc = tls_sess_of(SSL_get_SSL_CTX(ssl));
	int64_t now = pt_now.mono_ms, life;
	struct tk_root *root;
	int rc = 0;

	if (sc == NULL || !sc->tickets || sc->cy == NULL ||
	    sc->cy->keys == NULL)
		return 0;
	life = sc->cy->ticket_life_ms;
	if ((root = tk_lock(sc->cy->keys, now)) == NULL)
		return 0;
	if (enc) {
		if (root->newest == TK_NONE ||
		    now - root->keys[root->newest].created_ms >=
			    tk_period(life))
			(void)tk_rotate(root, now, life);
		if (root->newest != TK_NONE) {
			*out = root->keys[root->newest];
			memcpy(name, out->name, sizeof(out->name));
			rc = 1;
		}
	} else {
		for (uint32_t i = 0; i < TK_KEYS; i++) {
			struct tk_key *k = &root->keys[i];
			if (!tk_usable(k, now, life) ||
			    memcmp(k->name, name, sizeof(k->name)) != 0)
				continue;
			*out = *k;
			rc = i == root->newest &&
					     SSL_version(ssl) < TLS1_3_VERSION
				     ? 1
				     : 2;
			break;
		}
	}
	pt_shm_unlock(sc->cy->keys);
	return rc;
}

#if OPENSSL_VERSION_NUMBER >= 0x30000000L
typedef EVP_MAC_CTX tk_hmac_ctx;

static int
tk_hmac_init(EVP_MAC_CTX *h, unsigned char *key)
{
	char digest[] = "SHA256";
	OSSL_PARAM params[3];

	params[0] =
		OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key, 32);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
						     digest, 0);
	params[2] = OSSL_PARAM_construct_end();
	return EVP_MAC_CTX_set_params(h, params) == 1 ? PT_OK : PT_ERROR;
}
#else
typedef HMAC_CTX tk_hmac_ctx;

static int
tk_hmac_init(HMAC_CTX *h, unsigned char *key)
{
	return HMAC_Init_ex(h, key, 32, EVP_sha256(), NULL) == 1 ? PT_OK
								 : PT_ERROR;
}
#endif

/* OpenSSL's ticket callback: 1 or 2 (renew) with the contexts set, 0
 * for no ticket (enc) or not ours (a full handshake), -1 on error. */
static int
tk_ticket_cb(SSL *ssl, unsigned char *name, unsigned char *iv,
	     EVP_CIPHER_CTX *cctx, tk_hmac_ctx *hctx, int enc)
{
	struct tk_key k;
	int rc = tk_select(ssl, name, &k, enc);

	if (rc <= 0)
		return rc;
	if (enc)
		rc = RAND_bytes(iv, 16) == 1 &&
				     EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(),
							NULL, k.aes, iv) == 1
			     ? rc
			     : -1;
	else
		rc = EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, k.aes,
					iv) == 1
			     ? rc
			     : -1;
	if (rc > 0 && tk_hmac_init(hctx, k.hmac) != PT_OK)
		rc = -1;
	OPENSSL_cleanse(&k, sizeof(k));
	return rc;
}

static int
tk_zone_init(struct pt_shm_zone *z, void *data, int reused)
{
	struct tls_sess_cycle *cy = data;
	struct tk_root *root = reused ? *pt_shm_user(z) : NULL;

	if (root != NULL && root->magic == TK_MAGIC)
		return PT_OK; /* the keys survive the reload */
	root = pt_shm_calloc(z, sizeof(*root));
	if (root == NULL) {
		pt_log(PT_LOG_CRIT, 0, "zone \"%s\": no room for the keys",
		       z->name);
		return PT_ERROR;
	}
	root->magic = TK_MAGIC;
	root->newest = TK_NONE;
	if (tk_rotate(root, pt_now.mono_ms, cy->ticket_life_ms) != PT_OK) {
		pt_log(PT_LOG_CRIT, 0, "zone \"%s\": no random bytes for a key",
		       z->name);
		return PT_ERROR;
	}
	*pt_shm_user(z) = root;
	return PT_OK;
}

/* ---- setup ----------------------------------------------------------- */

/* The cycle's state: the data of a zone already declared, or new. */
static struct tls_sess_cycle *
tls_sess_cycle(struct pt_conf *cf)
{
	for (struct pt_shm_zone *z = cf->cycle->zones; z != NULL; z = z->next)
		if (strcmp(z->name, TLS_CACHE_ZONE) == 0 ||
		    strcmp(z->name, TLS_KEYS_ZONE) == 0)
			return z->data;
	return pt_pcalloc(cf->pool, sizeof(struct tls_sess_cycle));
}

/* The cache zone is sized by the largest size asked for in the cycle:
 * it is mapped only when the cycle is opened, so it may still grow. */
static int
tsc_declare(struct pt_conf *cf, struct tls_sess_cycle *cy, size_t size)
{
	if (size > TLS_CACHE_MAX) {
		pt_conf_error(cf, NULL,
			      "tls: session_cache of %zu bytes is "
			      "too large",
			      size);
		return PT_ERROR;
	}
	size = PT_ALIGN(PT_MAX(size, (size_t)PT_SHM_MIN_SIZE), TLS_ZONE_PAGE);
	if (cy->cache == NULL) {
		cy->cache = pt_shm_zone_add(cf, TLS_CACHE_ZONE, size,
					    tsc_zone_init, cy);
		return cy->cache != NULL ? PT_OK : PT_ERROR;
	}
	PT_ASSERT(cy->cache->addr == NULL);
	if (size > cy->cache->size)
		cy->cache->size = size;
	return PT_OK;
}

/* Feed the DER of x (a certificate), of a name or of a CRL into md. */
static int
tls_sess_digest_der(EVP_MD_CTX *md, const X509 *x, const X509_NAME *name,
		    const X509_CRL *crl)
{
	unsigned char *der = NULL;
	int len = x != NULL      ? i2d_X509(x, &der)
		  : name != NULL ? i2d_X509_NAME(name, &der)
				 : i2d_X509_CRL(crl, &der);
	int ok = len > 0 && EVP_DigestUpdate(md, der, (size_t)len) == 1;

	OPENSSL_free(der);
	return ok ? PT_OK : PT_ERROR;
}

/* What a session made with ctx vouches for: its certificates, how it
 * verifies clients, against which authorities and revocation lists, and
 * the protocols and ciphers it may use (OpenSSL checks the client's
 * list, not ours). */
static int
tls_sess_digest_ctx(EVP_MD_CTX *md, SSL_CTX *ctx)
{
	uint64_t v[5] = {
		(uint64_t)SSL_CTX_get_verify_mode(ctx),
		(uint64_t)SSL_CTX_get_verify_depth(ctx),
		(uint64_t)SSL_CTX_get_min_proto_version(ctx),
		(uint64_t)SSL_CTX_get_max_proto_version(ctx),
		(uint64_t)(SSL_CTX_get_options(ctx) & SSL_OP_NO_SSL_MASK)};
	STACK_OF(SSL_CIPHER) *ciphers = SSL_CTX_get_ciphers(ctx);
	STACK_OF(X509_NAME) *names = SSL_CTX_get_client_CA_list(ctx);
	STACK_OF(X509_OBJECT) * objs;
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	SSL *ssl = SSL_new(ctx); /* to walk the certificates, not ctx's */
	int rc = ssl != NULL && EVP_DigestUpdate(md, v, sizeof(v)) == 1
			 ? PT_OK
			 : PT_ERROR;

	for (int more = ssl != NULL &&
			SSL_set_current_cert(ssl, SSL_CERT_SET_FIRST);
	     rc == PT_OK && more;
	     more = SSL_set_current_cert(ssl, SSL_CERT_SET_NEXT))
		if (SSL_get_certificate(ssl) != NULL)
			rc = tls_sess_digest_der(md, SSL_get_certificate(ssl),
						 NULL, NULL);
	SSL_free(ssl);
	for (int i = 0; rc == PT_OK && i < sk_SSL_CIPHER_num(ciphers); i++) {
		uint32_t id =
			SSL_CIPHER_get_id(sk_SSL_CIPHER_value(ciphers, i));
		if (EVP_DigestUpdate(md, &id, sizeof(id)) != 1)
			rc = PT_ERROR;
	}
	for (int i = 0; rc == PT_OK && i < sk_X509_NAME_num(names); i++)
		rc = tls_sess_digest_der(md, NULL, sk_X509_NAME_value(names, i),
					 NULL);
	objs = store != NULL ? X509_STORE_get0_objects(store) : NULL;
	/* a CRL added by a reload changes the context: a session made
	 * before it would resume without the revocation check */
	for (int i = 0; rc == PT_OK && i < sk_X509_OBJECT_num(objs); i++) {
		X509_OBJECT *o = sk_X509_OBJECT_value(objs, i);
		X509 *x = X509_OBJECT_get0_X509(o);
		X509_CRL *crl = X509_OBJECT_get0_X509_CRL(o);
		if (x != NULL)
			rc = tls_sess_digest_der(md, x, NULL, NULL);
		else if (crl != NULL)
			rc = tls_sess_digest_der(md, NULL, NULL, crl);
	}
	if (rc == PT_OK && store != NULL) {
		uint64_t flags = (uint64_t)X509_VERIFY_PARAM_get_flags(
			X509_STORE_get0_param(store));
		if (EVP_DigestUpdate(md, &flags, sizeof(flags)) != 1)
			rc = PT_ERROR;
	}
	return rc;
}

/*
 * The session id context: a digest of the server block's context and of
 * what ctx vouches for, so that a session resumes only where the same
 * certificates are served and clients are verified the same way: a
 * reload that changes verify_client, client_ca or the CRLs (or a server
 * block that now has the old one's number) makes full handshakes, never
 * lets a session made under the old rules in (OpenSSL does not verify
 * the client again on resumption).
 */
static int
tls_sess_id_context(struct pt_conf *cf, SSL_CTX *ctx,
		    const unsigned char *sid_ctx, size_t len)
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char out[EVP_MAX_MD_SIZE];
	unsigned int outlen = 0;
	int ok = md != NULL && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
		 EVP_DigestUpdate(md, sid_ctx, len) == 1 &&
		 tls_sess_digest_ctx(md, ctx) == PT_OK &&
		 EVP_DigestFinal_ex(md, out, &outlen) == 1 &&
		 SSL_CTX_set_session_id_context(
			 ctx, out,
			 PT_MIN(outlen, (unsigned)SSL_MAX_SID_CTX_LENGTH)) == 1;

	EVP_MD_CTX_free(md);
	if (ok)
		return PT_OK;
	ERR_clear_error();
	pt_conf_error(cf, NULL, "tls: cannot set the session id context");
	return PT_ERROR;
}

int
pt_tls_sessions_setup(struct pt_conf *cf, SSL_CTX *ctx, size_t cache_size,
		      int tickets, int64_t timeout_ms,
		      const unsigned char *sid_ctx, size_t sid_ctx_len)
{
	struct tls_sess_ctx *sc;
	int64_t secs = timeout_ms <= 0 ? 1 : (timeout_ms + 999) / 1000;

	if (tls_sess_id_context(cf, ctx, sid_ctx, sid_ctx_len) != PT_OK)
		return PT_ERROR;
	SSL_CTX_set_timeout(ctx, (long)PT_MIN(secs, (int64_t)LONG_MAX));
	if (tls_sess_index < 0)
		tls_sess_index =
			SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
	sc = pt_pcalloc(cf->pool, sizeof(*sc));
	if (tls_sess_index < 0 || sc == NULL ||
	    SSL_CTX_set_ex_data(ctx, tls_sess_index, sc) != 1)
		goto nomem;
	/* the callbacks on every context: this one may be where a session
	 * starts before SNI takes it to a server with a cache or tickets
	 * (OpenSSL keeps calling the first context's) */
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_SERVER |
						    SSL_SESS_CACHE_NO_INTERNAL);
	SSL_CTX_sess_set_new_cb(ctx, tsc_new_cb);
	SSL_CTX_sess_set_get_cb(ctx, tsc_get_cb);
	SSL_CTX_sess_set_remove_cb(ctx, tsc_remove_cb);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, tk_ticket_cb);
#else
	SSL_CTX_set_tlsext_ticket_key_cb(ctx, tk_ticket_cb);
#endif
	if (SSL_CTX_set_session_ticket_cb(ctx, tls_sess_ticket_gen, NULL,
					  NULL) != 1)
		goto nomem;
	if (!tickets)
		SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
	/* With neither, TLS 1.3 would still send (stateful) tickets that no
	 * cache keeps: send none. The SNI switch (tls.c) carries the number
	 * over, so a server reached by SNI keeps its own. */
	if (cache_size == 0 && !tickets) {
		SSL_CTX_set_num_tickets(ctx, 0);
		return PT_OK;
	}
	sc->cy = tls_sess_cycle(cf);
	if (sc->cy == NULL)
		goto nomem;
	if (cache_size > 0) {
		if (tsc_declare(cf, sc->cy, cache_size) != PT_OK)
			return PT_ERROR;
		sc->cache = 1;
	}
	if (!tickets)
		return PT_OK;
	if (sc->cy->keys == NULL) {
		sc->cy->keys =
			pt_shm_zone_add(cf, TLS_KEYS_ZONE, PT_SHM_MIN_SIZE,
					tk_zone_init, sc->cy);
		if (sc->cy->keys == NULL)
			return PT_ERROR;
	}
	sc->tickets = 1;
	sc->cy->ticket_life_ms = PT_MAX(sc->cy->ticket_life_ms, secs * 1000);
	SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
	return PT_OK;
nomem:
	pt_conf_error(cf, NULL, "tls: session setup: out of memory");
	return PT_ERROR;
}
