/*
 * upstream.c: the "upstreams" block, the implicit upstream of a proxy_pass
 * URL, and the shared zone "upstreams" that holds every peer's state.
 * An upstream with a "tls" group (or the upstream of an https:// URL)
 * has its TLS settings in mc->tls at the same index (proxy_tls.c).
 *
 * The zone is declared with a fixed size so that a reload reuses it: a
 * peer keeps its state (down, failures, in-flight count, latency) across
 * a HUP when its upstream name and address are unchanged. Entries are
 * keyed by "name\0address" and carry the generation of the last config
 * that used them; an entry two generations old belongs to no running
 * worker that matters and is freed. Only the master allocates in the
 * zone (when a config is opened); workers and the health helper touch
 * the states with atomics only (balance.c).
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "log.h"
#include "pool.h"
#include "proxy.h"
#include "shm.h"

#include <netdb.h>
#include <unistd.h>

#define UPS_ZONE_SIZE ((size_t)2 << 20)
#define UPS_MAGIC 0x70757073u

/* ---- configuration --------------------------------------------------------- */

/* What a block is parsed into before it becomes the runtime structures
 * (the generic setters store int64_t and int). */
struct ups_conf {
	int balance;
	const char *hash_key;
	const config_setting_t *hash_node;
	int64_t keepalive, keepalive_timeout, keepalive_requests;
	const config_setting_t *servers, *health, *tls;
};

struct ups_peer_conf {
	const char *address;
	int64_t weight, max_fails, fail_timeout, max_conns, slow_start;
	int backup;
};

struct ups_health_conf {
	const char *path, *expect;
	int64_t interval, timeout, rise, fall;
};

static const struct pt_enum ups_balance_names[] = {
	{ "round_robin", PT_LB_ROUND_ROBIN },
	{ "least_conn", PT_LB_LEAST_CONN },
	{ "ip_hash", PT_LB_IP_HASH },
	{ "hash", PT_LB_HASH },
	{ "random", PT_LB_RANDOM },
	{ "ewma", PT_LB_EWMA },
	{ NULL, 0 },
};

static int ups_set_node(struct pt_conf *, const struct pt_setting *,
			const config_setting_t *, void *);

static const struct pt_range ups_r_keepalive = { 0, 65536 };
static const struct pt_range ups_r_requests = { 0, INT64_MAX };
static const struct pt_range ups_r_weight = { 1, 1000 };
static const struct pt_range ups_r_fails = { 0, 1000000 };
static const struct pt_range ups_r_conns = { 0, 1000000 };
static const struct pt_range ups_r_rise = { 1, 1000 };
static const struct pt_range ups_r_ms = { 1, PT_DURATION_MAX };

#define UC(f) offsetof(struct ups_conf, f)
const struct pt_setting pt_upstream_block[] = {
	{ "balance", PT_T_ENUM, PT_SCOPE_UPSTREAM, PT_STORE_UPS, UC(balance),
	  NULL, ups_balance_names },
	{ "hash_key", PT_T_CUSTOM, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	  UC(hash_node), ups_set_node, NULL },
	{ "keepalive", PT_T_INT, PT_SCOPE_UPSTREAM, PT_STORE_UPS, UC(keepalive),
	  NULL, &ups_r_keepalive },
	{ "keepalive_timeout", PT_T_DURATION, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	  UC(keepalive_timeout), NULL, NULL },
	{ "keepalive_requests", PT_T_INT, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	  UC(keepalive_requests), NULL, &ups_r_requests },
	{ "servers", PT_T_CUSTOM, PT_SCOPE_UPSTREAM, PT_STORE_UPS, UC(servers),
	  ups_set_node, NULL },
	{ "health_check", PT_T_CUSTOM, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	  UC(health), ups_set_node, NULL },
	{ "tls", PT_T_CUSTOM, PT_SCOPE_UPSTREAM, PT_STORE_UPS, UC(tls),
	  ups_set_node, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};
#undef UC

#define PC(f) offsetof(struct ups_peer_conf, f)
const struct pt_setting pt_peer_block[] = {
	{ "address", PT_T_STRING, PT_SCOPE_UPSTREAM, PT_STORE_UPS, PC(address),
	  NULL, NULL },
	{ "weight", PT_T_INT, PT_SCOPE_UPSTREAM, PT_STORE_UPS, PC(weight), NULL,
	  &ups_r_weight },
	{ "max_fails", PT_T_INT, PT_SCOPE_UPSTREAM, PT_STORE_UPS, PC(max_fails),
	  NULL, &ups_r_fails },
	{ "fail_timeout", PT_T_DURATION, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	  PC(fail_timeout), NULL, NULL },
	{ "max_conns", PT_T_INT, PT_SCOPE_UPSTREAM, PT_STORE_UPS, PC(max_conns),
	  NULL, &ups_r_conns },
	{ "slow_start", PT_T_DURATION, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	  PC(slow_start), NULL, NULL },
	{ "backup", PT_T_FLAG, PT_SCOPE_UPSTREAM, PT_STORE_UPS, PC(backup), NULL,
	  NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};
#undef PC

#define HC(f) offsetof(struct ups_health_conf, f)
const struct pt_setting pt_health_block[] = {
	{ "path", PT_T_STRING, PT_SCOPE_UPSTREAM, PT_STORE_UPS, HC(path), NULL,
	  NULL },
	{ "interval", PT_T_DURATION, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	  HC(interval), NULL, &ups_r_ms },
	{ "timeout", PT_T_DURATION, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	  HC(timeout), NULL, &ups_r_ms },
	{ "rise", PT_T_INT, PT_SCOPE_UPSTREAM, PT_STORE_UPS, HC(rise), NULL,
	  &ups_r_rise },
	{ "fall", PT_T_INT, PT_SCOPE_UPSTREAM, PT_STORE_UPS, HC(fall), NULL,
	  &ups_r_rise },
	{ "expect_status", PT_T_STRING, PT_SCOPE_UPSTREAM, PT_STORE_UPS,
	  HC(expect), NULL, NULL },
	{ NULL, 0, 0, 0, 0, NULL, NULL },
};
#undef HC

/* Keep the node itself: parsed when the whole block is known. */
static int
ups_set_node(struct pt_conf *cf, const struct pt_setting *s,
	     const config_setting_t *node, void *conf)
{
	(void)cf;
	*(const config_setting_t **)(void *)((char *)conf + s->offset) = node;
	return PT_OK;
}

static const char *
ups_file(struct pt_conf *cf, const config_setting_t *node)
{
	const char *f = config_setting_source_file(node);

	return pt_pstrdup(cf->pool, f ? f : cf->cycle->conf_file);
}

/*
 * Resolve an address: "unix:/path", a numeric "ip:port" / "[v6]:port",
 * or "name:port" looked up now (the first address; a name is resolved
 * once, at load, as nginx does without a resolver).
 */
static int
ups_resolve(struct pt_conf *cf, const config_setting_t *node, const char *s,
	    struct pt_sockaddr *a)
{
	char text[PT_ADDR_TEXT], err[160], host[256];
	const char *colon = strrchr(s, ':');
	struct addrinfo hints, *res = NULL;
	int rc;

	if (pt_addr_parse(s, a, text, sizeof(text), err, sizeof(err)) == PT_OK &&
	    (strncmp(s, "unix:", 5) == 0 || colon != NULL)) {
		if (a->u.sa.sa_family != AF_UNIX && pt_addr_port(&a->u.sa) == 0)
			goto noport;
		return PT_OK;
	}
	if (colon == NULL || colon == s || s[0] == '[' ||
	    (size_t)(colon - s) >= sizeof(host))
		goto noport;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = '\0';
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV;
	rc = getaddrinfo(host, colon + 1, &hints, &res);
	if (rc != 0 || res == NULL) {
		pt_conf_error(cf, node, "address \"%s\": %s", s,
			      rc ? gai_strerror(rc) : "no address");
		return PT_ERROR;
	}
	memset(a, 0, sizeof(*a));
	memcpy(&a->u.sa, res->ai_addr, res->ai_addrlen);
	a->len = res->ai_addrlen;
	freeaddrinfo(res);
	return PT_OK;
noport:
	pt_conf_error(cf, node,
		      "address \"%s\": expected host:port, [ipv6]:port or "
		      "unix:/path",
		      s);
	return PT_ERROR;
}

static int
ups_peer(struct pt_conf *cf, struct pt_upstream *u,
	 const config_setting_t *g, struct pt_upstream_peer *p)
{
	struct ups_peer_conf pc = { NULL, PT_UNSET, PT_UNSET, PT_UNSET,
				    PT_UNSET, PT_UNSET, PT_UNSET };
	char block[160];

	snprintf(block, sizeof(block), "a server of upstream \"%s\"", u->name);
	if (!config_setting_is_group(g)) {
		pt_conf_error(cf, g, "%s must be a group { address = ...; }",
			      block);
		return PT_ERROR;
	}
	if (pt_conf_walk_table(cf, g, pt_peer_block, block, &pc) != PT_OK)
		return PT_ERROR;
	if (pc.address == NULL) {
		pt_conf_error(cf, g, "%s has no \"address\"", block);
		return PT_ERROR;
	}
	if (ups_resolve(cf, g, pc.address, &p->addr) != PT_OK)
		return PT_ERROR;
	p->address = pc.address;
	p->weight = pc.weight == PT_UNSET ? 1 : (unsigned)pc.weight;
	p->max_fails = pc.max_fails == PT_UNSET ? 1 : (unsigned)pc.max_fails;
	p->fail_timeout = pc.fail_timeout == PT_UNSET ? 10000 : pc.fail_timeout;
	p->max_conns = pc.max_conns == PT_UNSET ? 0 : (unsigned)pc.max_conns;
	p->slow_start = pc.slow_start == PT_UNSET ? 0 : pc.slow_start;
	p->backup = pc.backup == 1;
	return PT_OK;
}

static int
ups_peers(struct pt_conf *cf, struct pt_upstream *u,
	  const config_setting_t *list, const config_setting_t *g)
{
	unsigned n, k = 0;
	int rc = PT_OK;

	if (list == NULL || (!config_setting_is_list(list) &&
			     !config_setting_is_array(list)) ||
	    config_setting_length(list) == 0) {
		pt_conf_error(cf, list ? list : g, "upstream \"%s\" needs \"servers\": a "
					"list of groups ( { address = ...; } )",
			      u->name);
		return PT_ERROR;
	}
	n = (unsigned)config_setting_length(list);
	if (n > PT_LB_MAX_PEERS) {
		pt_conf_error(cf, list, "upstream \"%s\": more than %u servers",
			      u->name, PT_LB_MAX_PEERS);
		return PT_ERROR;
	}
	struct pt_upstream_peer *all = pt_pcalloc(cf->pool, n * sizeof(*all));
	u->peers = pt_pcalloc(cf->pool, n * sizeof(*u->peers));
	if (u->peers == NULL || all == NULL)
		return PT_ERROR;
	for (unsigned i = 0; i < n; i++)
		if (ups_peer(cf, u, config_setting_get_elem(list, i), &all[i]) !=
		    PT_OK)
			rc = PT_ERROR;
	if (rc != PT_OK)
		return rc;
	/* primaries first, then backups, each in configured order */
	for (unsigned i = 0; i < n; i++)
		if (!all[i].backup)
			u->peers[k++] = all[i];
	u->nprimary = k;
	for (unsigned i = 0; i < n; i++)
		if (all[i].backup)
			u->peers[k++] = all[i];
	u->npeers = k;
	if (rc == PT_OK && u->nprimary == 0) {
		pt_conf_error(cf, list,
			      "upstream \"%s\" has only backup servers",
			      u->name);
		rc = PT_ERROR;
	}
	return rc;
}

/* One status ("200") or one range ("200-399"). */
static int
ups_expect(struct pt_conf *cf, const config_setting_t *node, const char *s,
	   struct pt_health_check *hc)
{
	char *end;
	long a = strtol(s, &end, 10), b = a;

	if (*end == '-')
		b = strtol(end + 1, &end, 10);
	if (*end != '\0' || a < 100 || b > 599 || a > b) {
		pt_conf_error(cf, node,
			      "\"expect_status\": \"%s\" is not a status or "
			      "a range like \"200-399\"",
			      s);
		return PT_ERROR;
	}
	hc->status_min = (int)a;
	hc->status_max = (int)b;
	return PT_OK;
}

static int
ups_health(struct pt_conf *cf, struct pt_upstream *u,
	   const config_setting_t *g)
{
	struct ups_health_conf hc = { NULL, NULL, PT_UNSET, PT_UNSET, PT_UNSET,
				      PT_UNSET };
	struct pt_health_check *h;
	char block[160];

	snprintf(block, sizeof(block), "the health_check of upstream \"%s\"",
		 u->name);
	if (!config_setting_is_group(g)) {
		pt_conf_error(cf, g, "\"health_check\" must be a group { ... }");
		return PT_ERROR;
	}
	if (pt_conf_walk_table(cf, g, pt_health_block, block, &hc) != PT_OK)
		return PT_ERROR;
	h = pt_pcalloc(cf->pool, sizeof(*h));
	if (h == NULL)
		return PT_ERROR;
	h->path = hc.path ? hc.path : "/";
	if (h->path[0] != '/') {
		pt_conf_error(cf, g, "\"path\" of %s must start with '/'",
			      block);
		return PT_ERROR;
	}
	for (const char *p = h->path; *p; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
			pt_conf_error(cf, g,
				      "\"path\" of %s has a space or a "
				      "control character",
				      block);
			return PT_ERROR;
		}
	h->interval = hc.interval == PT_UNSET ? 5000 : hc.interval;
	h->timeout = hc.timeout == PT_UNSET ? 1000 : hc.timeout;
	h->rise = hc.rise == PT_UNSET ? 2 : (unsigned)hc.rise;
	h->fall = hc.fall == PT_UNSET ? 3 : (unsigned)hc.fall;
	h->status_min = 200;
	h->status_max = 399;
	if (hc.expect != NULL && ups_expect(cf, g, hc.expect, h) != PT_OK)
		return PT_ERROR;
	u->hc = h;
	return PT_OK;
}

static int
ups_grow(struct pt_conf *cf, struct proxy_main_conf *mc)
{
	struct pt_upstream **a;
	struct proxy_tls **t;
	unsigned n = mc->nalloc ? mc->nalloc * 2 : 8;

	if (mc->nups < mc->nalloc)
		return PT_OK;
	a = pt_palloc(cf->pool, n * sizeof(*a));
	t = pt_pcalloc(cf->pool, n * sizeof(*t));
	if (a == NULL || t == NULL)
		return PT_ERROR;
	if (mc->nups) {
		memcpy(a, mc->ups, mc->nups * sizeof(*a));
		memcpy(t, mc->tls, mc->nups * sizeof(*t));
	}
	mc->ups = a;
	mc->tls = t;
	mc->nalloc = n;
	return PT_OK;
}

static int
ups_block(struct pt_conf *cf, struct proxy_main_conf *mc,
	  const config_setting_t *g)
{
	struct ups_conf c = { PT_UNSET, NULL, NULL, PT_UNSET, PT_UNSET,
			      PT_UNSET, NULL, NULL, NULL };
	const char *name = config_setting_name(g);
	struct pt_upstream *u;
	char block[160];
	int rc;

	if (!config_setting_is_group(g)) {
		pt_conf_error(cf, g, "upstream \"%s\" must be a group { ... }",
			      name);
		return PT_ERROR;
	}
	if (pt_proxy_upstream_find(mc, name) != NULL) {
		pt_conf_error(cf, g, "upstream \"%s\" is defined twice", name);
		return PT_ERROR;
	}
	snprintf(block, sizeof(block), "upstream \"%s\"", name);
	u = pt_pcalloc(cf->pool, sizeof(*u));
	if (u == NULL || ups_grow(cf, mc) != PT_OK)
		return PT_ERROR;
	u->name = pt_pstrdup(cf->pool, name);
	u->file = ups_file(cf, g);
	u->line = config_setting_source_line(g);
	if (u->name == NULL || u->file == NULL)
		return PT_ERROR;
	rc = pt_conf_walk_table(cf, g, pt_upstream_block, block, &c);
	u->balance = c.balance == PT_UNSET ? PT_LB_ROUND_ROBIN
					   : (unsigned)c.balance;
	u->keepalive = c.keepalive == PT_UNSET ? 32 : c.keepalive;
	u->keepalive_timeout =
		c.keepalive_timeout == PT_UNSET ? 60000 : c.keepalive_timeout;
	u->keepalive_requests =
		c.keepalive_requests == PT_UNSET ? 1000 : c.keepalive_requests;
	if (ups_peers(cf, u, c.servers, g) != PT_OK)
		rc = PT_ERROR;
	else if (c.tls != NULL &&
		 (mc->tls[mc->nups] = pt_proxy_tls_conf(cf, u, c.tls, NULL)) ==
			 NULL)
		rc = PT_ERROR;
	if (c.health != NULL && ups_health(cf, u, c.health) != PT_OK)
		rc = PT_ERROR;
	if (c.hash_node != NULL) {
		const char *k = config_setting_get_string(c.hash_node);
		u->hash_key = pt_pcalloc(cf->pool, sizeof(*u->hash_key));
		if (k == NULL || u->hash_key == NULL) {
			pt_conf_error(cf, c.hash_node,
				      "\"hash_key\" expects a string");
			rc = PT_ERROR;
		} else if (pt_tpl_compile(cf, c.hash_node, k, u->hash_key) !=
			   PT_OK) {
			rc = PT_ERROR;
		}
	}
	if (u->balance == PT_LB_HASH && u->hash_key == NULL) {
		pt_conf_error(cf, g,
			      "upstream \"%s\": balance = \"hash\" needs "
			      "\"hash_key\"",
			      name);
		rc = PT_ERROR;
	}
	u->index = mc->nups;
	mc->ups[mc->nups++] = u;
	return rc;
}

int
pt_proxy_set_upstreams(struct pt_conf *cf, const struct pt_setting *s,
		       const config_setting_t *node, void *conf)
{
	struct proxy_main_conf *mc = conf;
	int rc = PT_OK;

	if (!config_setting_is_group(node)) {
		pt_conf_error(cf, node,
			      "\"%s\" expects a group of named upstreams: "
			      "{ app = { servers = ( ... ); }; }",
			      s->name);
		return PT_ERROR;
	}
	for (unsigned i = 0; i < (unsigned)config_setting_length(node); i++)
		if (ups_block(cf, mc, config_setting_get_elem(node, i)) != PT_OK)
			rc = PT_ERROR;
	return rc;
}

struct pt_upstream *
pt_proxy_upstream_find(struct proxy_main_conf *mc, const char *name)
{
	for (unsigned i = 0; i < mc->nups; i++)
		if (strcmp(mc->ups[i]->name, name) == 0)
			return mc->ups[i];
	return NULL;
}

struct pt_upstream *
pt_proxy_upstream_implicit(struct pt_conf *cf, struct proxy_main_conf *mc,
			   const char *url, const config_setting_t *node)
{
	int tls = strncmp(url, "https://", 8) == 0;
	const char *hostport = url + (tls ? 8 : 7);
	size_t len = strcspn(hostport, "/?#");
	char *addr, *name;
	struct pt_upstream *u;

	if (hostport[len] != '\0' && strcmp(hostport + len, "/") != 0) {
		pt_conf_error(cf, node,
			      "\"proxy_pass\": \"%s\": a URL with a path is not "
			      "supported; the request's path is passed as is",
			      url);
		return NULL;
	}
	addr = pt_pstrndup(cf->pool, hostport, len);
	name = pt_psprintf(cf->pool, "%s://%s", tls ? "https" : "http",
			   addr ? addr : "");
	if (addr == NULL || name == NULL)
		return NULL;
	u = pt_proxy_upstream_find(mc, name);
	if (u != NULL)
		return u;
	u = pt_pcalloc(cf->pool, sizeof(*u));
	if (u == NULL || ups_grow(cf, mc) != PT_OK)
		return NULL;
	u->peers = pt_pcalloc(cf->pool, sizeof(*u->peers));
	if (u->peers == NULL)
		return NULL;
	if (ups_resolve(cf, node, addr, &u->peers[0].addr) != PT_OK)
		return NULL;
	u->name = name;
	u->implicit = 1;
	u->file = ups_file(cf, node);
	u->line = config_setting_source_line(node);
	u->keepalive = 32;
	u->keepalive_timeout = 60000;
	u->keepalive_requests = 1000;
	u->npeers = u->nprimary = 1;
	u->peers[0] = (struct pt_upstream_peer){
		.address = addr,
		.addr = u->peers[0].addr,
		.weight = 1,
		.max_fails = 1,
		.fail_timeout = 10000,
	};
	if (tls) {
		/* the name of the URL is the name verified, also when the
		 * URL says an IP address (then verified as an IP) */
		const char *colon = strrchr(addr, ':');
		const char *host = colon ? pt_pstrndup(cf->pool, addr,
						       (size_t)(colon - addr))
					 : NULL;
		if (host != NULL && host[0] == '[')
			host = pt_pstrndup(cf->pool, host + 1, strlen(host) - 2);
		if (host == NULL || host[0] == '\0') {
			pt_conf_error(cf, node,
				      "\"proxy_pass\": \"%s\": no host name",
				      url);
			return NULL;
		}
		mc->tls[mc->nups] = pt_proxy_tls_conf(cf, u, node, host);
		if (mc->tls[mc->nups] == NULL)
			return NULL;
	}
	u->index = mc->nups;
	mc->ups[mc->nups++] = u;
	return u;
}

/* ---- the shared zone ---------------------------------------------------------- */

struct ups_entry {
	struct ups_entry *next;
	unsigned generation;
	unsigned keylen;
	struct pt_peer_state st;
	char key[]; /* upstream name, NUL, address */
};

struct ups_root {
	uint32_t magic;
	uint32_t nentries;
	struct ups_entry *head;
};

static struct ups_entry *
ups_entry(struct pt_shm_zone *z, struct ups_root *root,
	  const struct pt_upstream *u, const struct pt_upstream_peer *p,
	  unsigned generation)
{
	size_t nlen = strlen(u->name), alen = strlen(p->address);
	size_t klen = nlen + 1 + alen;
	struct ups_entry *e;

	for (e = root->head; e != NULL; e = e->next)
		if (e->keylen == klen && memcmp(e->key, u->name, nlen + 1) == 0 &&
		    memcmp(e->key + nlen + 1, p->address, alen) == 0)
			break;
	if (e == NULL) {
		e = pt_shm_calloc(z, sizeof(*e) + klen);
		if (e == NULL)
			return NULL;
		e->keylen = (unsigned)klen;
		memcpy(e->key, u->name, nlen + 1);
		memcpy(e->key + nlen + 1, p->address, alen);
		e->next = root->head;
		root->head = e;
		root->nentries++;
	}
	e->generation = generation;
	return e;
}

static int
ups_zone_init(struct pt_shm_zone *z, void *data, int reused)
{
	struct proxy_main_conf *mc = data;
	unsigned gen = mc->cycle->generation;
	struct ups_root *root = reused ? *pt_shm_user(z) : NULL;
	struct ups_entry **pe;

	if (root == NULL || root->magic != UPS_MAGIC) {
		root = pt_shm_calloc(z, sizeof(*root));
		if (root == NULL)
			goto full;
		root->magic = UPS_MAGIC;
		*pt_shm_user(z) = root;
	}
	for (unsigned i = 0; i < mc->nups; i++) {
		struct pt_upstream *u = mc->ups[i];
		for (unsigned k = 0; k < u->npeers; k++) {
			struct ups_entry *e =
				ups_entry(z, root, u, &u->peers[k], gen);
			if (e == NULL)
				goto full;
			u->peers[k].st = &e->st;
			if (u->hc == NULL) {
				/* no checks (any more): no verdict holds */
				__atomic_store_n(&e->st.checked, 0,
						 __ATOMIC_RELAXED);
				e->st.rise = e->st.fall = 0;
			}
		}
	}
	/* states no config of the last two generations uses */
	for (pe = &root->head; *pe != NULL;) {
		struct ups_entry *e = *pe;
		if (e->generation + 1 < gen) {
			*pe = e->next;
			root->nentries--;
			pt_shm_free(z, e);
			continue;
		}
		pe = &e->next;
	}
	return PT_OK;
full:
	pt_log(PT_LOG_CRIT, 0,
	       "shared zone \"%s\" (%zu bytes) is too small for every "
	       "upstream server",
	       z->name, z->size);
	return PT_ERROR;
}

int
pt_proxy_upstreams_ready(struct pt_conf *cf, struct proxy_main_conf *mc)
{
	mc->cycle = cf->cycle;
	if (mc->nups == 0)
		return PT_OK;
	for (unsigned i = 0; i < mc->nups; i++) {
		if (pt_lb_init(cf, mc->ups[i]) != PT_OK)
			return PT_ERROR;
		if (mc->ups[i]->hc != NULL)
			mc->need_helper = 1;
	}
	mc->zone = pt_shm_zone_add(cf, "upstreams", UPS_ZONE_SIZE,
				   ups_zone_init, mc);
	return mc->zone != NULL ? PT_OK : PT_ERROR;
}

int
pt_proxy_upstreams_worker(struct proxy_main_conf *mc, struct pt_loop *loop)
{
	mc->loop = loop;
	if (mc->nups == 0)
		return PT_OK;
	mc->pipes = calloc(PROXY_PIPES_KEPT, sizeof(*mc->pipes));
	if (mc->pipes == NULL)
		return PT_ERROR;
	mc->rt = calloc(mc->nups, sizeof(*mc->rt));
	if (mc->rt == NULL)
		return PT_ERROR;
	for (unsigned i = 0; i < mc->nups; i++)
		if (pt_lb_init_worker(mc->ups[i], &mc->rt[i]) != PT_OK)
			return PT_ERROR;
	return PT_OK;
}

void
pt_proxy_upstreams_exit(struct proxy_main_conf *mc)
{
	if (mc->rt == NULL)
		return;
	for (unsigned i = 0; i < mc->nups; i++) {
		while (mc->rt[i].idle != NULL)
			pt_upconn_release(mc->rt[i].idle, 0);
		pt_lb_exit_worker(&mc->rt[i]);
		pt_proxy_tls_exit(mc->tls[i]);
	}
	free(mc->rt);
	mc->rt = NULL;
	while (mc->npipes > 0) {
		mc->npipes--;
		close(mc->pipes[mc->npipes][0]);
		close(mc->pipes[mc->npipes][1]);
	}
	free(mc->pipes);
	mc->pipes = NULL;
}
