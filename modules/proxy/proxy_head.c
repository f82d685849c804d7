/*
 * proxy_head.c: the request head sent to a backend, and the response
 * head passed back to the client.
 *
 * Both directions drop the hop-by-hop fields (RFC 9110 section 7.6.1):
 * Connection and every field it names, Keep-Alive, TE,
 * Transfer-Encoding, Upgrade and Proxy-Connection; the framing of each
 * hop is ours (Content-Length or chunked, keep-alive, Upgrade for a
 * tunnel). The request target is the raw path as received with its
 * dot-segments removed ("%2e" counts as a dot, as it did for location
 * matching), so the backend sees the path the access rules saw, with
 * its percent-encoding untouched.
 */
#include "core.h"
#include "http.h"
#include "listen.h"
#include "pool.h"
#include "proxy.h"

/* ---- path ----------------------------------------------------------------- */

/* 1 if s[0..n) is "." (dots == 1) or ".." (dots == 2), "%2e" counting as
 * a dot. */
static int
head_dots(const char *s, size_t n, unsigned dots)
{
	unsigned k = 0;

	for (size_t i = 0; i < n; k++) {
		if (s[i] == '.')
			i++;
		else if (n - i >= 3 && s[i] == '%' && s[i + 1] == '2' &&
			 (s[i + 2] | 0x20) == 'e')
			i += 3;
		else
			return 0;
	}
	return k == dots;
}

/*
 * Remove dot-segments from a raw absolute path (RFC 3986 section 5.2.4)
 * into out (room for len bytes). The core has already refused a path
 * climbing above "/". Returns the length written.
 */
static size_t
head_path(const char *p, size_t len, char *out)
{
	size_t o = 0, i = 1;

	out[o++] = '/';
	while (i <= len) {
		size_t e = i;
		while (e < len && p[e] != '/')
			e++;
		if (head_dots(p + i, e - i, 1)) {
			/* "." : nothing; "/a/." keeps its trailing slash */
		} else if (head_dots(p + i, e - i, 2)) {
			if (o > 1) {
				o--; /* the slash ending the last segment */
				while (o > 0 && out[o - 1] != '/')
					o--;
			}
		} else {
			memcpy(out + o, p + i, e - i);
			o += e - i;
			if (e < len)
				out[o++] = '/';
		}
		i = e + 1;
	}
	return o;
}

/* ---- request ------------------------------------------------------------- */

/* Whether a field named name is listed by one of the Connection fields. */
static int
head_in_connection(const struct pt_http_req_head *h, struct pt_str name)
{
	if (h->known[PT_H_CONNECTION] == NULL)
		return 0;
	for (unsigned i = 0; i < h->nheaders; i++) {
		const struct pt_http_header *f = &h->headers[i];
		const char *p, *end;
		if (f->id != PT_H_CONNECTION)
			continue;
		p = f->value.data;
		end = p + f->value.len;
		while (p < end) {
			const char *t;
			while (p < end && (*p == ',' || *p == ' ' || *p == '\t'))
				p++;
			t = p;
			while (p < end && *p != ',' && *p != ' ' && *p != '\t')
				p++;
			if ((size_t)(p - t) == name.len && name.len > 0 &&
			    pt_strncasecmp(t, name.data, name.len) == 0)
				return 1;
		}
	}
	return 0;
}

static int
head_hop_by_hop(unsigned id)
{
	switch (id) {
	case PT_H_CONNECTION:
	case PT_H_KEEP_ALIVE:
	case PT_H_TE:
	case PT_H_TRANSFER_ENCODING:
	case PT_H_UPGRADE:
	case PT_H_PROXY_CONNECTION:
		return 1;
	default:
		return 0;
	}
}

/* Is the field set (or removed) by proxy_set_header? */
static int
head_overridden(const struct proxy_loc_conf *lc, const struct pt_http_header *f)
{
	for (unsigned i = 0; i < lc->nset; i++)
		if (lc->set[i].name.len == f->name.len &&
		    pt_strncasecmp(lc->set[i].name.data, f->name.data,
				   f->name.len) == 0)
			return 1;
	return 0;
}

static int
head_is(const struct pt_http_header *f, const char *lit, size_t n)
{
	return f->name.len == n && pt_strncasecmp(f->name.data, lit, n) == 0;
}
#define HEAD_IS(f, lit) head_is((f), (lit), sizeof(lit) - 1)

/* Does the client's field go to the backend as it is? */
static int
head_forward(struct pt_http_request *r, const struct proxy_loc_conf *lc,
	     const struct pt_http_header *f)
{
	if (head_hop_by_hop(f->id))
		return 0;
	switch (f->id) {
	case PT_H_HOST:
	case PT_H_CONTENT_LENGTH:
	case PT_H_EXPECT: /* we answer 100-continue ourselves */
		return 0;
	case PT_H_X_FORWARDED_FOR:
		if (lc->forwarded == PROXY_FWD_X ||
		    lc->forwarded == PROXY_FWD_BOTH)
			return 0; /* rewritten with the client appended */
		break;
	default:
		break;
	}
	/* single values we set: a client's own would be believed first */
	if ((lc->forwarded == PROXY_FWD_X || lc->forwarded == PROXY_FWD_BOTH) &&
	    (HEAD_IS(f, "X-Forwarded-Proto") || HEAD_IS(f, "X-Forwarded-Host")))
		return 0;
	if ((lc->forwarded == PROXY_FWD_RFC7239 ||
	     lc->forwarded == PROXY_FWD_BOTH) &&
	    HEAD_IS(f, "Forwarded"))
		return 0;
	if (lc->via && HEAD_IS(f, "Via"))
		return 0;
	if (head_overridden(lc, f))
		return 0;
	return !head_in_connection(&r->h, f->name);
}

/* The values of every field with the name, joined by ", " (a pool copy),
 * or an empty string. */
static struct pt_str
head_joined(struct pt_http_request *r, const char *name, size_t nlen)
{
	struct pt_str out = { "", 0 };
	size_t len = 0;
	char *p;

	for (unsigned i = 0; i < r->h.nheaders; i++)
		if (head_is(&r->h.headers[i], name, nlen))
			len += r->h.headers[i].value.len + 2;
	if (len == 0 || (p = pt_pnalloc(r->pool, len)) == NULL)
		return out;
	out.data = p;
	for (unsigned i = 0; i < r->h.nheaders; i++) {
		const struct pt_http_header *f = &r->h.headers[i];
		if (!head_is(f, name, nlen) || f->value.len == 0)
			continue;
		if (p != out.data) {
			*p++ = ',';
			*p++ = ' ';
		}
		memcpy(p, f->value.data, f->value.len);
		p += f->value.len;
	}
	out.len = (size_t)(p - out.data);
	return out;
}

struct head_w {
	char *p, *end;
};

static void
head_put(struct head_w *w, const char *s, size_t n)
{
	PT_ASSERT((size_t)(w->end - w->p) >= n);
	memcpy(w->p, s, n);
	w->p += n;
}
#define HEAD_LIT(w, lit) head_put((w), (lit), sizeof(lit) - 1)

static void
head_field(struct head_w *w, const char *name, size_t nlen, struct pt_str v)
{
	head_put(w, name, nlen);
	HEAD_LIT(w, ": ");
	head_put(w, v.data, v.len);
	HEAD_LIT(w, "\r\n");
}

/* The host to send: the target's authority for absolute-form, else the
 * Host field as received (with its port); an HTTP/1.0 request without
 * one gets the upstream's name (its address for proxy_pass
 * "http://host:port"), as HTTP/1.1 requires a Host. */
static struct pt_str
head_host(struct pt_http_request *r)
{
	const struct pt_upstream *u = proxy_loc(r)->upstream;
	struct pt_str h = r->h.host;

	if (r->h.target_form == PT_TARGET_ABSOLUTE)
		return r->h.authority;
	if (r->h.known[PT_H_HOST] != NULL)
		return r->h.known[PT_H_HOST]->value;
	if (h.len == 0 && u != NULL) {
		h.data = u->implicit ? u->peers[0].address : u->name;
		h.len = strlen(h.data);
	}
	return h;
}

/* Does proxy_set_header name the field (then it alone is sent)? */
#define HEAD_SET_HAS(lc, bit) (((lc)->set_mask & (bit)) != 0)

/* Forwarded/X-Forwarded-* and Via, by the location's settings; a field
 * that proxy_set_header sets is left to it. */
static size_t
head_forwarding(struct pt_http_request *r, const struct proxy_loc_conf *lc,
		struct head_w *w, struct pt_str host)
{
	char ip[PT_ADDR_TEXT + 8];
	size_t iplen, n = 0;
	const struct pt_sockaddr *a = r->client;

	iplen = pt_addr_ip(&a->u.sa, ip, sizeof(ip));
	if (lc->forwarded == PROXY_FWD_X || lc->forwarded == PROXY_FWD_BOTH) {
		struct pt_str xff = head_joined(r, "X-Forwarded-For", 15);
		n += xff.len + iplen + 96 + host.len;
		if (w != NULL && !HEAD_SET_HAS(lc, PROXY_SET_XFF)) {
			HEAD_LIT(w, "X-Forwarded-For: ");
			if (xff.len) {
				head_put(w, xff.data, xff.len);
				HEAD_LIT(w, ", ");
			}
			head_put(w, ip, iplen);
			HEAD_LIT(w, "\r\n");
		}
		if (w != NULL && !HEAD_SET_HAS(lc, PROXY_SET_XFP)) {
			/* $scheme */
			if (r->conn->ssl != NULL)
				HEAD_LIT(w, "X-Forwarded-Proto: https\r\n");
			else
				HEAD_LIT(w, "X-Forwarded-Proto: http\r\n");
		}
		if (w != NULL && host.len && !HEAD_SET_HAS(lc, PROXY_SET_XFH))
			head_field(w, "X-Forwarded-Host", 16, host);
	}
	if (lc->forwarded == PROXY_FWD_RFC7239 ||
	    lc->forwarded == PROXY_FWD_BOTH) {
		struct pt_str fw = head_joined(r, "Forwarded", 9);
		int v6 = a->u.sa.sa_family == AF_INET6;
		n += fw.len + iplen + 64 + host.len;
		if (w != NULL && !HEAD_SET_HAS(lc, PROXY_SET_FORWARDED)) {
			HEAD_LIT(w, "Forwarded: ");
			if (fw.len) {
				head_put(w, fw.data, fw.len);
				HEAD_LIT(w, ", ");
			}
			/* an IPv6 node is quoted and bracketed (RFC 7239 6) */
			HEAD_LIT(w, "for=");
			if (v6)
				HEAD_LIT(w, "\"[");
			head_put(w, ip, iplen);
			if (v6)
				HEAD_LIT(w, "]\"");
			if (r->conn->ssl != NULL)
				HEAD_LIT(w, ";proto=https");
			else
				HEAD_LIT(w, ";proto=http");
			if (host.len) {
				HEAD_LIT(w, ";host=\"");
				head_put(w, host.data, host.len);
				HEAD_LIT(w, "\"");
			}
			HEAD_LIT(w, "\r\n");
		}
	}
	if (lc->via) {
		struct pt_str via = head_joined(r, "Via", 3);
		n += via.len + 32;
		if (w != NULL && !HEAD_SET_HAS(lc, PROXY_SET_VIA)) {
			HEAD_LIT(w, "Via: ");
			if (via.len) {
				head_put(w, via.data, via.len);
				HEAD_LIT(w, ", ");
			}
			if (r->h.version == 10)
				HEAD_LIT(w, "1.0 portier\r\n");
			else
				HEAD_LIT(w, "1.1 portier\r\n");
		}
	}
	return n;
}

int
pt_proxy_build_request(struct pt_http_request *r, struct pt_str *out,
		       int chunked_body)
{
	const struct proxy_loc_conf *lc = proxy_loc(r);
	struct pt_str host = head_host(r), *vals = NULL;
	const struct pt_http_header *up = r->h.known[PT_H_UPGRADE];
	size_t len;
	struct head_w w;
	char *buf;

	if (lc->nset > 0) {
		vals = pt_palloc(r->pool, lc->nset * sizeof(*vals));
		if (vals == NULL)
			return PT_ERROR;
	}
	len = r->h.method.len + r->h.path.len + r->h.query.len + 160 +
	      host.len + head_forwarding(r, lc, NULL, host);
	for (unsigned i = 0; i < lc->nset; i++) {
		if (pt_tpl_eval(r, &lc->set[i].value, &vals[i]) != PT_OK)
			return PT_ERROR;
		len += lc->set[i].name.len + vals[i].len + 4;
	}
	for (unsigned i = 0; i < r->h.nheaders; i++)
		len += r->h.headers[i].name.len + r->h.headers[i].value.len + 4;
	if (r->h.conn_upgrade && up != NULL)
		len += up->value.len + 48;
	buf = pt_pnalloc(r->pool, len);
	if (buf == NULL)
		return PT_ERROR;
	w.p = buf;
	w.end = buf + len;

	head_put(&w, r->h.method.data, r->h.method.len);
	HEAD_LIT(&w, " ");
	w.p += head_path(r->h.path.data, r->h.path.len, w.p);
	if (r->h.has_query) {
		HEAD_LIT(&w, "?");
		head_put(&w, r->h.query.data, r->h.query.len);
	}
	HEAD_LIT(&w, " HTTP/1.1\r\n");
	/* always a Host in HTTP/1.1 (head_host() names the upstream when the
	 * client's HTTP/1.0 request had none) */
	if (!HEAD_SET_HAS(lc, PROXY_SET_HOST))
		head_field(&w, "Host", 4, host);
	for (unsigned i = 0; i < r->h.nheaders; i++) {
		const struct pt_http_header *f = &r->h.headers[i];
		if (head_forward(r, lc, f))
			head_field(&w, f->name.data, f->name.len, f->value);
	}
	(void)head_forwarding(r, lc, &w, host);
	for (unsigned i = 0; i < lc->nset; i++)
		if (!lc->set[i].empty && vals[i].len > 0)
			head_field(&w, lc->set[i].name.data, lc->set[i].name.len,
				   vals[i]);
	if (chunked_body)
		HEAD_LIT(&w, "Transfer-Encoding: chunked\r\n");
	else if (r->h.content_length >= 0)
		w.p += snprintf(w.p, (size_t)(w.end - w.p),
				"Content-Length: %lld\r\n",
				(long long)r->h.content_length);
	if (r->h.conn_upgrade && up != NULL) {
		HEAD_LIT(&w, "Connection: upgrade\r\n");
		head_field(&w, "Upgrade", 7, up->value);
	} else if (lc->upstream->keepalive == 0) {
		/* we will close it: say so (RFC 9112 section 9.3) */
		HEAD_LIT(&w, "Connection: close\r\n");
	}
	HEAD_LIT(&w, "\r\n");
	out->data = buf;
	out->len = (size_t)(w.p - buf);
	return PT_OK;
}

/* ---- response -------------------------------------------------------------- */

static int
head_hidden(const struct proxy_loc_conf *lc, const struct pt_http_header *f)
{
	/* our own Server and Date replace the backend's (no version leak) */
	if (HEAD_IS(f, "Server") || HEAD_IS(f, "Date"))
		return 1;
	for (unsigned i = 0; i < lc->hide.n; i++) {
		size_t n = strlen(lc->hide.items[i]);
		if (head_is(f, lc->hide.items[i], n))
			return 1;
	}
	return 0;
}

/* Whether the response's Connection fields name the field. */
static int
head_resp_in_connection(const struct pt_http_resp_head *h, struct pt_str name)
{
	struct pt_http_req_head fake;

	memset(&fake, 0, sizeof(fake));
	fake.headers = h->headers;
	fake.nheaders = h->nheaders;
	fake.known[PT_H_CONNECTION] = h->known[PT_H_CONNECTION];
	return head_in_connection(&fake, name);
}

/* The length a HEAD response announces (the framing check validated it:
 * digits, equal values in a list); -1 if unreadable. */
static int64_t
head_length(struct pt_str v)
{
	int64_t n = 0;
	size_t i = 0;

	if (v.len == 0)
		return -1;
	for (; i < v.len && v.data[i] >= '0' && v.data[i] <= '9'; i++) {
		if (n > (INT64_MAX - 9) / 10)
			return -1;
		n = n * 10 + (v.data[i] - '0');
	}
	return i > 0 ? n : -1;
}

int
pt_proxy_copy_response(struct pt_http_request *r,
		       const struct pt_http_resp_head *h)
{
	const struct proxy_loc_conf *lc = proxy_loc(r);

	r->out.status = h->status;
	if (h->status == 101 && h->known[PT_H_UPGRADE] != NULL)
		r->out.upgrade = h->known[PT_H_UPGRADE]->value;
	if (!h->chunked && !h->until_close && h->content_length >= 0)
		r->out.content_length = h->content_length;
	else if (h->no_body && (r->h.method_id & PT_HTTP_HEAD) &&
		 h->known[PT_H_CONTENT_LENGTH] != NULL)
		r->out.content_length = head_length(
			h->known[PT_H_CONTENT_LENGTH]->value);
	for (unsigned i = 0; i < h->nheaders; i++) {
		const struct pt_http_header *f = &h->headers[i];
		if (head_hop_by_hop(f->id) || f->id == PT_H_CONTENT_LENGTH ||
		    head_hidden(lc, f) || head_resp_in_connection(h, f->name))
			continue;
		if (HEAD_IS(f, "Content-Type")) {
			r->out.content_type = f->value;
			continue;
		}
		if (pt_http_add_header(r, f->name.data, f->name.len,
				       f->value.data, f->value.len) != PT_OK)
			return PT_ERROR;
	}
	return PT_OK;
}
