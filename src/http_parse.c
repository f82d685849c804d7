/*
 * http_parse.c: the strict HTTP/1.x request parser (RFC 9110, RFC 9112).
 *
 * A head is found by pt_http_scan_head() as bytes arrive, then parsed once
 * by pt_http_parse_head(). The scanner keeps only offsets (the buffer may
 * move) and takes every decision on a fixed window of bytes, never on how
 * they were split between reads: a head fed byte by byte gets the same
 * verdict as the same head fed whole. It checks the request line with a
 * small automaton as it arrives (garbage, a TLS hello or a bad version is
 * refused at once rather than after head_max bytes), and each header line
 * once complete: CRLF, no leading whitespace, the limits, the field syntax
 * and Content-Length. The parser then makes one more pass over a head
 * known to be complete, with memchr() for line ends and one table of
 * character classes for everything else; it checks everything again, as
 * it must stand alone, and it is cheap next to a read().
 *
 * Invariants: nothing is allocated; every slice points into the caller's
 * buffer, except the static "/" of an absolute-form target without a path;
 * only pt_http_check_host() writes into the buffer (lower-casing).
 *
 * Field lines are parsed by pt_http_parse_fields(), which knows nothing of
 * requests, so that the upstream response parser can share it; the
 * trailer section of a chunked body is checked byte by byte with the same
 * character classes.
 *
 * Callers: the connection read path (scan, parse, checks), the request body
 * reader (chunked), location matching (normalize_path).
 */
#include "core.h"
#include "http_parse.h"
#include "http_parse_int.h"
#include "util.h"

const uint8_t pt_http_ctype[256] = {
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 00 */
	0x00, 0x42, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 08 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 10 */
	0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, /* 18 */
	0x42, 0xe7, 0x86, 0x43, 0xe7, 0xc7, 0xe7, 0xe7, /* 20  !"#$%&' */
	0xe6, 0xe6, 0xe7, 0xe7, 0xe6, 0xef, 0xe7, 0xc6, /* 28 ()*+,-./ */
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, /* 30 01234567 */
	0xff, 0xff, 0xc6, 0xe6, 0xc6, 0xe6, 0xc6, 0x46, /* 38 89:;<=>? */
	0xc6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xef, /* 40 @ABCDEFG */
	0xef, 0xef, 0xef, 0xef, 0xef, 0xef, 0xef, 0xef, /* 48 HIJKLMNO */
	0xef, 0xef, 0xef, 0xef, 0xef, 0xef, 0xef, 0xef, /* 50 PQRSTUVW */
	0xef, 0xef, 0xef, 0xc6, 0x06, 0xc6, 0xc7, 0xef, /* 58 XYZ[\]^_ */
	0xc7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xf7, 0xe7, /* 60 `abcdefg */
	0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, /* 68 hijklmno */
	0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, 0xe7, /* 70 pqrstuvw */
	0xe7, 0xe7, 0xe7, 0xc6, 0xc7, 0xc6, 0xe7, 0x00, /* 78 xyz{|}~  */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* 80 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* 88 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* 90 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* 98 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* a0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* a8 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* b0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* b8 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* c0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* c8 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* d0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* d8 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* e0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* e8 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* f0 */
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, /* f8 */
};

/*
 * Name tables, sorted by length: a lookup finds the names of the right
 * length by binary search, then compares at most three of them.
 */
struct http_name {
	const char *name;
	size_t len;
	unsigned id;
};
/* clang-format off */
#define HTTP_M(name, id) { name, sizeof(name) - 1, id }
/* clang-format on */

/*
 * Registered methods: the IANA registry and the rest of llhttp's HTTP set
 * (PURGE, M-SEARCH, NOTIFY, SUBSCRIBE, UNSUBSCRIBE, SOURCE); not RTSP's.
 */
static const struct http_name http_methods[] = {
	HTTP_M("GET", PT_HTTP_GET),
	HTTP_M("PUT", PT_HTTP_PUT),
	HTTP_M("ACL", PT_HTTP_OTHER),
	HTTP_M("PRI", PT_HTTP_OTHER),
	HTTP_M("HEAD", PT_HTTP_HEAD),
	HTTP_M("POST", PT_HTTP_POST),
	HTTP_M("BIND", PT_HTTP_OTHER),
	HTTP_M("COPY", PT_HTTP_OTHER),
	HTTP_M("LINK", PT_HTTP_OTHER),
	HTTP_M("LOCK", PT_HTTP_OTHER),
	HTTP_M("MOVE", PT_HTTP_OTHER),
	HTTP_M("PATCH", PT_HTTP_PATCH),
	HTTP_M("TRACE", PT_HTTP_TRACE),
	HTTP_M("LABEL", PT_HTTP_OTHER),
	HTTP_M("MERGE", PT_HTTP_OTHER),
	HTTP_M("MKCOL", PT_HTTP_OTHER),
	HTTP_M("PURGE", PT_HTTP_OTHER),
	HTTP_M("QUERY", PT_HTTP_OTHER),
	HTTP_M("DELETE", PT_HTTP_DELETE),
	HTTP_M("NOTIFY", PT_HTTP_OTHER),
	HTTP_M("REBIND", PT_HTTP_OTHER),
	HTTP_M("REPORT", PT_HTTP_OTHER),
	HTTP_M("SEARCH", PT_HTTP_OTHER),
	HTTP_M("SOURCE", PT_HTTP_OTHER),
	HTTP_M("UNBIND", PT_HTTP_OTHER),
	HTTP_M("UNLINK", PT_HTTP_OTHER),
	HTTP_M("UNLOCK", PT_HTTP_OTHER),
	HTTP_M("UPDATE", PT_HTTP_OTHER),
	HTTP_M("OPTIONS", PT_HTTP_OPTIONS),
	HTTP_M("CONNECT", PT_HTTP_CONNECT),
	HTTP_M("CHECKIN", PT_HTTP_OTHER),
	HTTP_M("CHECKOUT", PT_HTTP_OTHER),
	HTTP_M("M-SEARCH", PT_HTTP_OTHER),
	HTTP_M("PROPFIND", PT_HTTP_OTHER),
	HTTP_M("PROPPATCH", PT_HTTP_OTHER),
	HTTP_M("SUBSCRIBE", PT_HTTP_OTHER),
	HTTP_M("MKACTIVITY", PT_HTTP_OTHER),
	HTTP_M("MKCALENDAR", PT_HTTP_OTHER),
	HTTP_M("ORDERPATCH", PT_HTTP_OTHER),
	HTTP_M("UNCHECKOUT", PT_HTTP_OTHER),
	HTTP_M("MKWORKSPACE", PT_HTTP_OTHER),
	HTTP_M("UNSUBSCRIBE", PT_HTTP_OTHER),
	HTTP_M("MKREDIRECTREF", PT_HTTP_OTHER),
	HTTP_M("VERSION-CONTROL", PT_HTTP_OTHER),
	HTTP_M("BASELINE-CONTROL", PT_HTTP_OTHER),
	HTTP_M("UPDATEREDIRECTREF", PT_HTTP_OTHER),
};

/* Known fields, lower case. */
static const struct http_name http_hdr_names[] = {
	HTTP_M("te", PT_H_TE),
	HTTP_M("host", PT_H_HOST),
	HTTP_M("range", PT_H_RANGE),
	HTTP_M("expect", PT_H_EXPECT),
	HTTP_M("cookie", PT_H_COOKIE),
	HTTP_M("upgrade", PT_H_UPGRADE),
	HTTP_M("referer", PT_H_REFERER),
	HTTP_M("if-match", PT_H_IF_MATCH),
	HTTP_M("if-range", PT_H_IF_RANGE),
	HTTP_M("connection", PT_H_CONNECTION),
	HTTP_M("keep-alive", PT_H_KEEP_ALIVE),
	HTTP_M("user-agent", PT_H_USER_AGENT),
	HTTP_M("authorization", PT_H_AUTHORIZATION),
	HTTP_M("if-none-match", PT_H_IF_NONE_MATCH),
	HTTP_M("content-length", PT_H_CONTENT_LENGTH),
	HTTP_M("accept-encoding", PT_H_ACCEPT_ENCODING),
	HTTP_M("x-forwarded-for", PT_H_X_FORWARDED_FOR),
	HTTP_M("proxy-connection", PT_H_PROXY_CONNECTION),
	HTTP_M("transfer-encoding", PT_H_TRANSFER_ENCODING),
	HTTP_M("if-modified-since", PT_H_IF_MODIFIED_SINCE),
	HTTP_M("if-unmodified-since", PT_H_IF_UNMODIFIED_SINCE),
};

/* First entry of t[0..n) whose name is len bytes long, or n. */
static size_t
http_name_first(const struct http_name *t, size_t n, size_t len)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t[mid].len < len)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < n && t[lo].len == len ? lo : n;
}

unsigned
pt_http_method_id(const char *m, size_t len)
{
	size_t n = PT_ARRAY_SIZE(http_methods);

	for (size_t i = http_name_first(http_methods, n, len);
	     i < n && http_methods[i].len == len; i++)
		if (memcmp(http_methods[i].name, m, len) == 0)
			return http_methods[i].id;
	return 0;
}

unsigned
pt_http_header_id(const char *name, size_t len)
{
	size_t n = PT_ARRAY_SIZE(http_hdr_names);

	for (size_t i = http_name_first(http_hdr_names, n, len);
	     i < n && http_hdr_names[i].len == len; i++)
		if (http_hdr_names[i].name[0] ==
			    (char)pt_tolower((unsigned char)name[0]) &&
		    pt_strncasecmp(http_hdr_names[i].name, name, len) == 0)
			return http_hdr_names[i].id;
	return PT_H_OTHER;
}

/* ---- field lines (requests, responses, trailers) ----------------------- */

/*
 * Word at a time: does any of the 8 bytes of w fall below 0x20 or equal
 * 0x7f (a CTL; HTAB counts too)? "Has a byte less than n" is exact for
 * n <= 128; bytes >= 0x80 (obs-text) never match.
 */
#define HTTP_ONES 0x0101010101010101ULL

static inline uint64_t
http_less8(uint64_t w, unsigned n)
{
	return (w - HTTP_ONES * n) & ~w & (HTTP_ONES * 0x80);
}

static inline int
http_ctl8(uint64_t w)
{
	return (http_less8(w, 0x20) | http_less8(w ^ (HTTP_ONES * 0x7f), 1)) !=
	       0;
}

/*
 * Parse one field line p[0..len), CRLF excluded: a token, ':' at once (no
 * whitespace before it, RFC 9112 section 5.1), then the value, whose
 * surrounding OWS is dropped. Sets name and value, not id. Values are the
 * bulk of a head: they are checked eight bytes at a time while no CTL
 * shows, then byte by byte. Returns PT_OK or 400.
 */
int
pt_http_field_line(const char *p, size_t len, struct pt_http_header *hd)
{
	const char *end = p + len, *q = p, *v;
	uint64_t w;

	while (q < end && HTTP_IS(*q, C_TCHAR))
		q++;
	if (q == p || q == end || *q != ':')
		return 400;
	hd->name.data = p;
	hd->name.len = (size_t)(q - p);
	for (q++; q < end && HTTP_WS(*q); q++)
		;
	for (v = q; end - q >= 8; q += 8) {
		memcpy(&w, q, 8);
		if (http_ctl8(w))
			break;
	}
	for (; q < end; q++)
		if (!HTTP_IS(*q, C_FIELD))
			return 400;
	while (end > v && HTTP_WS(end[-1]))
		end--;
	hd->value.data = v;
	hd->value.len = (size_t)(end - v);
	return PT_OK;
}

/* A Content-Length value: 1*DIGIT, at most INT64_MAX. */
static int
http_content_length(struct pt_str v, int64_t *out)
{
	uint64_t n;

	if (pt_parse_uint(v.data, v.len, INT64_MAX, &n) != PT_OK)
		return 400;
	*out = (int64_t)n;
	return PT_OK;
}

/* ---- request line ------------------------------------------------------ */

/*
 * States of the scanner. The request-line states run in this order; the
 * five HS_VERSION states expect the bytes of "HTTP/" one by one.
 */
enum {
	HS_EMPTY = 0, /* skipping empty lines before the request line */
	HS_METHOD,
	HS_TARGET, /* first byte of the request-target */
	HS_PATH,   /* up to '?' or SP */
	HS_QUERY,
	HS_VERSION,
	HS_MAJOR = HS_VERSION + 5,
	HS_DOT1, /* major was 1 */
	HS_DOTX, /* major was something else */
	HS_MINOR1,
	HS_MINORX,
	HS_CR,
	HS_LF,
	HS_FIELDS /* request line done: header lines */
};

/* One byte of the version, from HS_VERSION to HS_LF; PT_AGAIN: go on. */
static int
http_version_byte(unsigned *st, unsigned char c)
{
	switch (*st) {
	case HS_MAJOR:
		if (!HTTP_DIGIT(c))
			return 400;
		*st = c == '1' ? HS_DOT1 : HS_DOTX;
		return PT_AGAIN;
	case HS_DOT1:
	case HS_DOTX:
		if (c != '.')
			return 400;
		*st = *st == HS_DOT1 ? HS_MINOR1 : HS_MINORX;
		return PT_AGAIN;
	case HS_MINOR1: *st = HS_CR; return HTTP_DIGIT(c) ? PT_AGAIN : 400;
	case HS_MINORX:
		/* well-formed HTTP/x.y with x != 1: HTTP/0.9, HTTP/2.0 */
		return HTTP_DIGIT(c) ? 505 : 400;
	case HS_CR: *st = HS_LF; return c == '\r' ? PT_AGAIN : 400;
	case HS_LF: *st = HS_FIELDS; return c == '\n' ? PT_OK : 400;
	default:
		PT_ASSERT(*st >= HS_VERSION && *st < HS_MAJOR);
		if (c != (unsigned char)"HTTP/"[*st - HS_VERSION])
			return 400;
		(*st)++;
		return PT_AGAIN;
	}
}

/*
 * Run the request-line automaton over l[*ip..end) from state *st (offsets
 * relative to the start of the line). Content bytes at offset lmax and
 * beyond give 414, any byte at hmax and beyond 431. Returns PT_AGAIN (all
 * valid so far, *ip = end), PT_OK (*ip just past the LF) or a status. Runs
 * of path, query and method bytes are skipped in tight loops.
 */
static int
http_reqline_run(unsigned *st, const char *l, size_t *ip, size_t end,
		 size_t lmax, size_t hmax)
{
	size_t i = *ip, stop = PT_MIN(end, PT_MIN(lmax, hmax));
	int rc = PT_AGAIN;

	while (i < end) {
		unsigned char c = (unsigned char)l[i];

		if (*st < HS_CR && i >= lmax) {
			rc = 414;
			break;
		}
		if (i >= hmax) {
			rc = 431;
			break;
		}
		switch (*st) {
		case HS_METHOD:
			while (i < stop && HTTP_IS(l[i], C_METHOD))
				i++;
			if (i == stop)
				continue;
			if (l[i] != ' ' || i == 0) {
				rc = 400;
				goto done;
			}
			if (pt_http_method_id(l, i) == 0) {
				rc = 501;
				goto done;
			}
			*st = HS_TARGET;
			i++;
			break;
		case HS_TARGET:
			if (c == ' ') {
				rc = 400;
				goto done;
			}
			*st = HS_PATH;
			/* FALLTHROUGH */
		case HS_PATH:
			while (i < stop && HTTP_IS(l[i], C_PATH))
				i++;
			if (i == stop)
				continue;
			if (l[i] != '?' && l[i] != ' ') {
				rc = 400;
				goto done;
			}
			*st = l[i] == '?' ? HS_QUERY : HS_VERSION;
			i++;
			break;
		case HS_QUERY:
			while (i < stop && HTTP_IS(l[i], C_TARGET))
				i++;
			if (i == stop)
				continue;
			if (l[i] != ' ') {
				rc = 400;
				goto done;
			}
			*st = HS_VERSION;
			i++;
			break;
		default:
			rc = http_version_byte(st, c);
			if (rc != PT_AGAIN) {
				if (rc == PT_OK)
					i++;
				goto done;
			}
			i++;
			break;
		}
	}
done:
	*ip = i;
	return rc;
}

/* ---- scanning ---------------------------------------------------------- */

/* Skip CRLFs before the request line; PT_OK once it starts. */
static int
http_scan_empty(struct pt_http_scan *s, const char *buf, size_t len,
		const struct pt_http_limits *lim)
{
	while (s->pos < len) {
		size_t p = s->pos;

		if (p >= lim->head_max)
			return 431;
		if (buf[p] == '\n')
			return 400;
		if (buf[p] != '\r') {
			s->start = s->line_start = p;
			s->state = HS_METHOD;
			return PT_OK;
		}
		if (p + 1 >= len)
			return PT_AGAIN;
		if (buf[p + 1] != '\n')
			return 400;
		if (p + 1 >= lim->head_max)
			return 431;
		s->pos = p + 2;
	}
	return PT_AGAIN;
}

/* s->seen: framing fields met so far */
#define HS_SEEN_CL 0x1

/*
 * Check a field line as soon as it is complete: its syntax, and the one
 * field whose value and uniqueness decide where the message ends,
 * Content-Length. Refusing those at once (as nginx does) costs one table
 * pass per line, and a bad length never waits for the rest of the head.
 */
static int
http_scan_field(struct pt_http_scan *s, const char *p, size_t len)
{
	struct pt_http_header hd;
	int64_t v;

	if (pt_http_field_line(p, len, &hd) != PT_OK)
		return 400;
	if (hd.name.len == 14 &&
	    pt_strncasecmp(hd.name.data, "content-length", 14) == 0) {
		if (s->seen & HS_SEEN_CL)
			return 400;
		s->seen |= HS_SEEN_CL;
		return http_content_length(hd.value, &v);
	}
	return PT_OK;
}

/*
 * Scan header lines up to the empty line that ends the head. Every line
 * must end in CRLF, not start with whitespace (obs-fold, or whitespace
 * after the start line) and pass http_scan_field(). A line is too long
 * when no LF comes within line_max + 2 bytes of its start; the head when
 * no final LF comes before head_max. Kept apart from the request line so
 * that the response parser can use it after its status line.
 */
static int
http_scan_fields(struct pt_http_scan *s, const char *buf, size_t len,
		 const struct pt_http_limits *lim)
{
	for (;;) {
		size_t ls = s->line_start, lend, stop, j;
		const char *lf;

		if (s->pos == ls) {
			if (ls >= len)
				return PT_AGAIN;
			if (ls >= lim->head_max)
				return 431;
			if (buf[ls] == '\r') {
				if (ls + 1 >= len)
					return PT_AGAIN;
				if (buf[ls + 1] != '\n')
					return 400;
				if (ls + 1 >= lim->head_max)
					return 431;
				s->pos = ls + 2;
				s->head_len = s->pos - s->start;
				return PT_OK;
			}
			if (buf[ls] == '\n' || HTTP_WS(buf[ls]))
				return 400;
		}
		lend = lim->line_max > SIZE_MAX - 2 - ls
			       ? SIZE_MAX
			       : ls + lim->line_max + 2;
		stop = PT_MIN(lend, lim->head_max);
		lf = NULL;
		if (s->pos < PT_MIN(len, stop))
			lf = memchr(buf + s->pos, '\n',
				    PT_MIN(len, stop) - s->pos);
		if (lf == NULL) {
			if (len < stop) {
				s->pos = len;
				return PT_AGAIN;
			}
			return 431;
		}
		j = (size_t)(lf - buf);
		if (buf[j - 1] != '\r' ||
		    http_scan_field(s, buf + ls, j - 1 - ls) != PT_OK)
			return 400;
		s->lines++;
		if (s->lines - 1 > lim->headers_max)
			return 431;
		s->pos = s->line_start = j + 1;
	}
}

int
pt_http_scan_head(struct pt_http_scan *s, const char *buf, size_t len,
		  const struct pt_http_limits *lim)
{
	int rc;

	PT_ASSERT(s->pos <= len && s->state <= HS_FIELDS);
	if (s->head_len != 0)
		return PT_OK;
	if (s->state == HS_EMPTY) {
		rc = http_scan_empty(s, buf, len, lim);
		if (rc != PT_OK)
			return rc;
	}
	if (s->state != HS_FIELDS) {
		size_t i = s->pos - s->start;
		size_t hmax =
			lim->head_max > s->start ? lim->head_max - s->start : 0;

		rc = http_reqline_run(&s->state, buf + s->start, &i,
				      len - s->start, lim->line_max, hmax);
		s->pos = s->start + i;
		if (rc != PT_OK)
			return rc;
		s->lines = 1;
		s->line_start = s->pos;
	}
	return http_scan_fields(s, buf, len, lim);
}

/* ---- parsing ----------------------------------------------------------- */

/*
 * Parse the field lines of p[0..len), which must end with the empty line
 * and nothing after it. Fills hdrs (room for max, *n used), the first
 * field of each known kind in known[] and the duplicates in *dup.
 * Returns PT_OK, 400 or 431 (more than max fields).
 */
int
pt_http_parse_fields(const char *p, size_t len, struct pt_http_header *hdrs,
		     unsigned max, unsigned *n, struct pt_http_header **known,
		     unsigned *dup)
{
	const char *end = p + len;

	for (;;) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		struct pt_http_header *hd;

		if (lf == NULL || lf == p || lf[-1] != '\r')
			return 400;
		if (lf == p + 1)
			return lf + 1 == end ? PT_OK : 400;
		if (*n == max)
			return 431;
		hd = &hdrs[*n];
		if (pt_http_field_line(p, (size_t)(lf - 1 - p), hd) != PT_OK)
			return 400;
		hd->id = pt_http_header_id(hd->name.data, hd->name.len);
		if (hd->id != PT_H_OTHER) {
			if (known[hd->id] != NULL)
				*dup |= 1u << hd->id;
			else
				known[hd->id] = hd;
		}
		(*n)++;
		p = lf + 1;
	}
}

/* Authority-form (CONNECT): host ":" port, port not empty. */
static int
http_authority_form(struct pt_http_req_head *h)
{
	const char *t = h->target.data, *end = t + h->target.len, *c = end;

	while (c > t && HTTP_DIGIT(c[-1]))
		c--;
	if (c == end || c - t < 2 || c[-1] != ':')
		return 400;
	h->target_form = PT_TARGET_AUTHORITY;
	h->authority = h->target;
	h->path.data = end;
	h->path.len = 0;
	return PT_OK;
}

/*
 * Absolute-form: "http" or "https" (any case), "://", a non-empty
 * authority without userinfo (RFC 9110 section 4.2.4), then the path.
 * *pathp is set to where the path starts.
 */
static int
http_absolute_form(struct pt_http_req_head *h, const char **pathp)
{
	const char *t = h->target.data, *end = t + h->target.len, *p, *a;

	for (p = t; p < end && *p != ':'; p++)
		;
	h->scheme.data = t;
	h->scheme.len = (size_t)(p - t);
	if (!PT_STR_CASEEQ(h->scheme, "http") &&
	    !PT_STR_CASEEQ(h->scheme, "https"))
		return 400;
	if (end - p < 3 || p[1] != '/' || p[2] != '/')
		return 400;
	a = p + 3;
	for (p = a; p < end && *p != '/' && *p != '?'; p++)
		if (*p == '@')
			return 400;
	if (p == a)
		return 400;
	h->target_form = PT_TARGET_ABSOLUTE;
	h->authority.data = a;
	h->authority.len = (size_t)(p - a);
	*pathp = p;
	return PT_OK;
}

/* Tell the form of the request-target and split it (RFC 9112 3.2). */
static int
http_parse_target(struct pt_http_req_head *h)
{
	const char *t = h->target.data, *end = t + h->target.len, *p = t, *q;
	int rc;

	if (h->method_id == PT_HTTP_CONNECT)
		return http_authority_form(h);
	if (h->target.len == 1 && t[0] == '*') {
		if (h->method_id != PT_HTTP_OPTIONS)
			return 400;
		h->target_form = PT_TARGET_ASTERISK;
		h->path = h->target;
		return PT_OK;
	}
	if (t[0] != '/') {
		rc = http_absolute_form(h, &p);
		if (rc != PT_OK)
			return rc;
	}
	q = memchr(p, '?', (size_t)(end - p));
	if (q != NULL) {
		h->has_query = 1;
		h->query.data = q + 1;
		h->query.len = (size_t)(end - q - 1);
		end = q;
	}
	h->path.data = p;
	h->path.len = (size_t)(end - p);
	if (h->path.len == 0) {
		h->path.data = "/";
		h->path.len = 1;
	}
	return PT_OK;
}

int
pt_http_parse_head(char *buf, size_t len, struct pt_http_req_head *h,
		   struct pt_http_header *hdrs, unsigned max)
{
	unsigned st = HS_METHOD;
	size_t i = 0;
	const char *sp1, *sp2;
	int rc;

	memset(h, 0, sizeof(*h));
	h->base = buf;
	h->headers = hdrs;
	h->content_length = -1;
	rc = http_reqline_run(&st, buf, &i, len, SIZE_MAX, SIZE_MAX);
	if (rc != PT_OK)
		return rc == PT_AGAIN ? 400 : rc;

	/* the automaton vouches for "METHOD SP target SP HTTP/1.d CRLF" */
	sp1 = memchr(buf, ' ', i);
	PT_ASSERT(sp1 != NULL);
	sp2 = memchr(sp1 + 1, ' ', (size_t)(buf + i - sp1 - 1));
	PT_ASSERT(sp2 != NULL && buf + i - sp2 == 11);
	h->method.data = buf;
	h->method.len = (size_t)(sp1 - buf);
	h->method_id = pt_http_method_id(buf, h->method.len);
	h->target.data = sp1 + 1;
	h->target.len = (size_t)(sp2 - sp1 - 1);
	h->version = sp2[8] == '0' ? 10 : 11;
	rc = http_parse_target(h);
	if (rc != PT_OK)
		return rc;
	return pt_http_parse_fields(buf + i, len - i, hdrs, max, &h->nheaders,
				    h->known, &h->dup);
}

/* ---- message semantics ------------------------------------------------- */

/*
 * The elements of every field of one kind, in order, as the one list they
 * mean together (RFC 9110 section 5.3); OWS trimmed, empty ones included.
 * Works on a header array, so that responses can use it too.
 */
void
pt_http_list_init(struct pt_http_list *l, const struct pt_http_header *first,
		  const struct pt_http_header *end)
{
	l->f = first;
	l->end = end;
	l->p = first != NULL ? first->value.data : NULL;
}

int
pt_http_list_next(struct pt_http_list *l, struct pt_str *e)
{
	const struct pt_http_header *f = l->f;
	const char *s = l->p, *c, *ve;

	if (f == NULL)
		return 0;
	ve = f->value.data + f->value.len;
	c = memchr(s, ',', (size_t)(ve - s));
	if (c != NULL) {
		l->p = c + 1;
	} else {
		c = ve;
		while (++f < l->end && f->id != l->f->id)
			;
		l->f = f < l->end ? f : NULL;
		l->p = f < l->end ? f->value.data : NULL;
	}
	while (s < c && HTTP_WS(*s))
		s++;
	while (c > s && HTTP_WS(c[-1]))
		c--;
	e->data = s;
	e->len = (size_t)(c - s);
	return 1;
}

static void
http_list_of(struct pt_http_list *l, const struct pt_http_req_head *h,
	     unsigned id)
{
	pt_http_list_init(l, h->known[id], h->headers + h->nheaders);
}

int
pt_http_is_token(struct pt_str t)
{
	if (t.len == 0)
		return 0;
	for (size_t i = 0; i < t.len; i++)
		if (!HTTP_IS(t.data[i], C_TCHAR))
			return 0;
	return 1;
}

/*
 * Transfer-Encoding (RFC 9112 section 6.1): the list must end with
 * chunked, once and without parameters (else 400); any other coding
 * before it is not implemented (501). Empty elements are refused: a list
 * that other parsers could read differently is a smuggling vector.
 */
static int
http_check_te(struct pt_http_req_head *h)
{
	struct pt_http_list l;
	struct pt_str e;
	int chunked = 0, other = 0;

	http_list_of(&l, h, PT_H_TRANSFER_ENCODING);
	while (pt_http_list_next(&l, &e)) {
		size_t n = 0;

		while (n < e.len && HTTP_IS(e.data[n], C_TCHAR))
			n++;
		if (n == 0 || chunked)
			return 400;
		if (n == 7 && pt_strncasecmp(e.data, "chunked", 7) == 0) {
			if (e.len != 7)
				return 400;
			chunked = 1;
			continue;
		}
		while (n < e.len && HTTP_WS(e.data[n]))
			n++;
		if (n < e.len && e.data[n] != ';')
			return 400;
		other = 1;
	}
	if (!chunked)
		return 400;
	if (other)
		return 501;
	h->chunked = 1;
	return PT_OK;
}

/* Connection options (RFC 9112 section 9.3); a non-token element: 400. */
static int
http_check_connection(struct pt_http_req_head *h)
{
	struct pt_http_list l;
	struct pt_str e;
	int close = 0, keep = 0, upgrade = 0;

	http_list_of(&l, h, PT_H_CONNECTION);
	while (pt_http_list_next(&l, &e)) {
		if (e.len == 0)
			continue;
		if (!pt_http_is_token(e))
			return 400;
		if (PT_STR_CASEEQ(e, "close"))
			close = 1;
		else if (PT_STR_CASEEQ(e, "keep-alive"))
			keep = 1;
		else if (PT_STR_CASEEQ(e, "upgrade"))
			upgrade = 1;
	}
	h->keepalive = !close && (h->version >= 11 || keep);
	/* RFC 9110 section 7.8: Upgrade is ignored in HTTP/1.0 */
	h->conn_upgrade = upgrade && h->version >= 11;
	return PT_OK;
}

/* Expect (RFC 9110 section 10.1.1): only 100-continue, else 417. */
static int
http_check_expect(struct pt_http_req_head *h)
{
	struct pt_http_list l;
	struct pt_str e;
	int cont = 0;

	http_list_of(&l, h, PT_H_EXPECT);
	while (pt_http_list_next(&l, &e)) {
		if (e.len == 0)
			continue;
		if (!PT_STR_CASEEQ(e, "100-continue"))
			return 417;
		cont = 1;
	}
	/* an HTTP/1.0 client can not expect 100 (Continue): ignored */
	h->expect_continue = cont && h->version >= 11;
	return PT_OK;
}

int
pt_http_check_framing(struct pt_http_req_head *h)
{
	struct pt_http_header *cl = h->known[PT_H_CONTENT_LENGTH];
	int rc;

	h->content_length = -1;
	h->chunked = 0;
	if (cl != NULL) {
		/* even two equal values: nginx refuses them too */
		if (h->dup & (1u << PT_H_CONTENT_LENGTH) ||
		    http_content_length(cl->value, &h->content_length) != PT_OK)
			return 400;
	}
	if (h->known[PT_H_TRANSFER_ENCODING] != NULL) {
		/* RFC 9112 section 6.1: faulty framing in HTTP/1.0 */
		if (h->version < 11 || cl != NULL)
			return 400;
		rc = http_check_te(h);
		if (rc != PT_OK)
			return rc;
	}
	rc = http_check_connection(h);
	if (rc != PT_OK)
		return rc;
	rc = http_check_expect(h);
	if (rc != PT_OK)
		return rc;
	if (h->method_id == PT_HTTP_CONNECT) {
		h->content_length = -1;
		h->chunked = 0;
		h->keepalive = 0;
	}
	return PT_OK;
}

/* ---- hosts ------------------------------------------------------------- */

/* dec-octet "." dec-octet "." dec-octet "." dec-octet, no leading zero. */
static int
http_ipv4(const char *p, size_t len)
{
	size_t i = 0;

	for (unsigned k = 0; k < 4; k++) {
		size_t s;
		unsigned v = 0;

		if (k > 0 && (i >= len || p[i++] != '.'))
			return 400;
		for (s = i; i < len && HTTP_DIGIT(p[i]) && i - s < 3; i++)
			v = v * 10 + (unsigned)(p[i] - '0');
		if (i == s || v > 255 || (p[s] == '0' && i - s > 1))
			return 400;
	}
	return i == len ? PT_OK : 400;
}

/* IPv6address of RFC 3986 section 3.2.2, without zone. */
static int
http_ipv6(const char *p, size_t len)
{
	size_t i = 0;
	unsigned groups = 0, dcolon = 0;

	if (len >= 2 && p[0] == ':' && p[1] == ':') {
		dcolon = 1;
		i = 2;
	}
	while (i < len) {
		size_t s = i;

		while (i < len && HTTP_IS(p[i], C_HEX))
			i++;
		if (i < len && p[i] == '.') {
			if (http_ipv4(p + s, len - s) != PT_OK)
				return 400;
			groups += 2;
			break;
		}
		if (i == s || i - s > 4)
			return 400;
		groups++;
		if (i == len)
			break;
		if (p[i++] != ':' || i == len)
			return 400;
		if (p[i] == ':') {
			if (dcolon++)
				return 400;
			i++;
		}
	}
	if (dcolon ? groups > 7 : groups != 8)
		return 400;
	return PT_OK;
}

/* "[" ( IPv6address / IPvFuture ) "]" without the brackets. */
static int
http_ip_literal(const char *p, size_t len)
{
	size_t i = 1;

	if (len == 0 || (p[0] != 'v' && p[0] != 'V'))
		return http_ipv6(p, len);
	while (i < len && HTTP_IS(p[i], C_HEX))
		i++;
	if (i == 1 || i + 1 >= len || p[i] != '.')
		return 400;
	for (i++; i < len; i++)
		if (!HTTP_IS(p[i], C_HOST) && p[i] != ':')
			return 400;
	return PT_OK;
}

/* reg-name or IPv4 up to ':' or end; *hl: bytes used, *dot: trailing '.' */
static int
http_reg_name(const char *p, size_t len, size_t *hl, int *dot)
{
	size_t i;

	for (i = 0; i < len && p[i] != ':'; i++) {
		if (!HTTP_IS(p[i], C_HOST))
			return 400;
		if (p[i] == '.' && (i == 0 || p[i - 1] == '.'))
			return 400;
	}
	*dot = i > 0 && p[i - 1] == '.';
	*hl = i;
	return i - (size_t)*dot == 0 ? 400 : PT_OK;
}

int
pt_http_parse_host(char *p, size_t len, struct pt_str *host,
		   struct pt_str *port)
{
	size_t hl, i;
	uint64_t v;
	int dot = 0;

	if (len == 0)
		return 400;
	if (p[0] == '[') {
		const char *rb = memchr(p, ']', len);

		if (rb == NULL ||
		    http_ip_literal(p + 1, (size_t)(rb - p) - 1) != PT_OK)
			return 400;
		hl = (size_t)(rb - p) + 1;
	} else if (http_reg_name(p, len, &hl, &dot) != PT_OK) {
		return 400;
	}
	if (hl < len) {
		const char *d = p + hl + 1;
		size_t dl = len - hl - 1;

		if (p[hl] != ':' || dl > 5 ||
		    (dl > 0 && pt_parse_uint(d, dl, 65535, &v) != PT_OK))
			return 400;
		port->data = d;
		port->len = dl;
	} else {
		port->data = p + len;
		port->len = 0;
	}
	for (i = 0; i < hl; i++)
		p[i] = (char)pt_tolower((unsigned char)p[i]);
	host->data = p;
	host->len = hl - (size_t)dot;
	return PT_OK;
}

/* A writable pointer to a slice of the head buffer. */
static char *
http_writable(struct pt_http_req_head *h, const char *p)
{
	return h->base + (p - h->base);
}

int
pt_http_check_host(struct pt_http_req_head *h)
{
	struct pt_http_header *f = h->known[PT_H_HOST];
	const struct pt_str *a = &h->authority;

	h->host.data = h->port.data = h->base;
	h->host.len = h->port.len = 0;
	if (f == NULL) {
		/* RFC 9112 section 3.2: a 1.1 request without Host is 400 */
		if (h->version >= 11)
			return 400;
	} else {
		if (h->dup & (1u << PT_H_HOST))
			return 400;
		if (pt_http_parse_host(http_writable(h, f->value.data),
				       f->value.len, &h->host,
				       &h->port) != PT_OK)
			return 400;
	}
	if (h->target_form == PT_TARGET_ABSOLUTE ||
	    h->target_form == PT_TARGET_AUTHORITY) {
		if (pt_http_parse_host(http_writable(h, a->data), a->len,
				       &h->host, &h->port) != PT_OK)
			return 400;
	}
	return PT_OK;
}

/* ---- paths ------------------------------------------------------------- */

static int
http_unhex(unsigned char c)
{
	if (HTTP_DIGIT(c))
		return c - '0';
	c = pt_tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/*
 * End of the segment that starts at out[seg] (o is the write position):
 * drop "." and climb for ".."; a following separator is written only
 * after a real segment. Returns the new write position, or 0 when ".."
 * would climb above the root.
 */
static size_t
http_end_segment(char *out, size_t seg, size_t o, int sep, unsigned flags)
{
	size_t n = o - seg;

	if (n == 1 && out[seg] == '.')
		return seg;
	if (n == 2 && out[seg] == '.' && out[seg + 1] == '.') {
		if (seg == 1)
			return 0;
		for (o = seg - 1; out[o - 1] != '/'; o--)
			;
		return o;
	}
	if (sep && !(n == 0 && (flags & PT_NORM_MERGE_SLASHES)))
		out[o++] = '/';
	return o;
}

/* The next byte of a raw path at *i, decoded; -1 for a bad escape. */
static int
http_path_byte(const char *raw, size_t len, size_t *i)
{
	int hi, lo;

	if (raw[*i] != '%')
		return (unsigned char)raw[(*i)++];
	if (len - *i < 3 || (hi = http_unhex((unsigned char)raw[*i + 1])) < 0 ||
	    (lo = http_unhex((unsigned char)raw[*i + 2])) < 0)
		return -1;
	*i += 3;
	return hi << 4 | lo;
}

int
pt_http_normalize_path(const char *raw, size_t len, char *out, size_t *outlen,
		       unsigned flags)
{
	size_t i = 1, o = 1, seg = 1;

	if (len == 0 || raw[0] != '/')
		return 400;
	out[0] = '/';
	for (;;) {
		int sep = i < len;

		if (sep) {
			int c = http_path_byte(raw, len, &i);

			if (c <= 0) /* a bad escape, a raw or encoded NUL */
				return 400;
			if (c != '/') {
				out[o++] = (char)c;
				continue;
			}
		}
		/* a raw or encoded '/', or the end: the segment is done */
		o = http_end_segment(out, seg, o, sep, flags);
		if (o == 0)
			return 400;
		if (!sep)
			break;
		seg = o;
	}
	*outlen = o;
	return PT_OK;
}

/* ---- chunked bodies ---------------------------------------------------- */

enum {
	CH_SIZE0 = 0, /* first byte of a chunk-size line */
	CH_SIZE,
	CH_SIZE_WS,   /* BWS after the size: ';' must follow */
	CH_EXT_NAME0, /* after ';', BWS then a token */
	CH_EXT_NAME,
	CH_EXT_NAME_WS,
	CH_EXT_VAL0, /* after '=', BWS then a token or a quoted-string */
	CH_EXT_TOKEN,
	CH_EXT_QUOTED,
	CH_EXT_QPAIR,
	CH_EXT_VAL_WS, /* after a value: BWS then ';' */
	CH_EXT_QEND,   /* just after the closing quote */
	CH_SIZE_LF,
	CH_DATA,
	CH_DATA_CR,
	CH_DATA_LF,
	CH_TR_LINE0, /* first byte of a trailer line, or CR of the end */
	CH_TR_NAME,
	CH_TR_VALUE,
	CH_TR_LF,
	CH_TR_END_LF,
	CH_DONE,
	CH_ERROR
};

void
pt_http_chunked_init(struct pt_http_chunked *c, size_t line_max,
		     size_t trailers_max)
{
	memset(c, 0, sizeof(*c));
	c->state = CH_SIZE0;
	c->line_max = line_max;
	c->trailers_max = trailers_max;
}

/* One byte of a chunk extension (RFC 9112 section 7.1.1). */
static int
http_chunk_ext(struct pt_http_chunked *c, unsigned char ch)
{
	unsigned st = c->state;

	if (st == CH_EXT_QUOTED) {
		if (ch == '"')
			c->state = CH_EXT_QEND;
		else if (ch == '\\')
			c->state = CH_EXT_QPAIR;
		else if (!HTTP_IS(ch, C_QDTEXT))
			return 400;
		return PT_OK;
	}
	if (st == CH_EXT_QPAIR) {
		c->state = CH_EXT_QUOTED;
		return HTTP_IS(ch, C_FIELD) ? PT_OK : 400;
	}
	if (HTTP_WS(ch)) {
		if (st == CH_EXT_NAME)
			c->state = CH_EXT_NAME_WS;
		else if (st == CH_EXT_TOKEN || st == CH_EXT_QEND)
			c->state = CH_EXT_VAL_WS;
		return PT_OK;
	}
	if (HTTP_IS(ch, C_TCHAR) && st != CH_EXT_NAME_WS &&
	    st != CH_EXT_VAL_WS && st != CH_EXT_QEND) {
		c->state = st == CH_EXT_NAME0  ? CH_EXT_NAME
			   : st == CH_EXT_VAL0 ? CH_EXT_TOKEN
					       : st;
		return PT_OK;
	}
	if (ch == '"' && st == CH_EXT_VAL0)
		c->state = CH_EXT_QUOTED;
	else if (ch == '=' && (st == CH_EXT_NAME || st == CH_EXT_NAME_WS))
		c->state = CH_EXT_VAL0;
	else if (ch == ';' && st != CH_EXT_NAME0 && st != CH_EXT_VAL0)
		c->state = CH_EXT_NAME0;
	else if (ch == '\r' &&
		 (st == CH_EXT_NAME || st == CH_EXT_TOKEN || st == CH_EXT_QEND))
		c->state = CH_SIZE_LF;
	else
		return 400;
	return PT_OK;
}

/* One byte of a chunk-size line or of the CRLF after chunk data. */
static int
http_chunk_line(struct pt_http_chunked *c, unsigned char ch)
{
	int d = http_unhex(ch);

	switch (c->state) {
	case CH_SIZE0:
	case CH_SIZE:
		if (d >= 0) {
			if (c->size > (uint64_t)INT64_MAX >> 4)
				return 400;
			c->size = c->size << 4 | (unsigned)d;
			c->state = CH_SIZE;
		} else if (c->state == CH_SIZE0) {
			return 400;
		} else if (ch == '\r') {
			c->state = CH_SIZE_LF;
		} else if (ch == ';') {
			c->state = CH_EXT_NAME0;
		} else if (HTTP_WS(ch)) {
			c->state = CH_SIZE_WS;
		} else {
			return 400;
		}
		return PT_OK;
	case CH_SIZE_WS:
		if (ch == ';')
			c->state = CH_EXT_NAME0;
		else if (!HTTP_WS(ch))
			return 400;
		return PT_OK;
	case CH_SIZE_LF:
		if (ch != '\n')
			return 400;
		c->state = c->size == 0 ? CH_TR_LINE0 : CH_DATA;
		return PT_OK;
	case CH_DATA_CR: c->state = CH_DATA_LF; return ch == '\r' ? PT_OK : 400;
	case CH_DATA_LF:
		c->state = CH_SIZE0;
		c->line_len = 0;
		return ch == '\n' ? PT_OK : 400;
	default: return http_chunk_ext(c, ch);
	}
}

/* One byte of the trailer section: field lines, then CRLF. */
static int
http_chunk_trailer(struct pt_http_chunked *c, unsigned char ch)
{
	if (++c->trailers_len > c->trailers_max)
		return 400;
	switch (c->state) {
	case CH_TR_LINE0:
		if (ch == '\r')
			c->state = CH_TR_END_LF;
		else if (HTTP_IS(ch, C_TCHAR))
			c->state = CH_TR_NAME;
		else
			return 400;
		return PT_OK;
	case CH_TR_NAME:
		if (ch == ':')
			c->state = CH_TR_VALUE;
		else if (!HTTP_IS(ch, C_TCHAR))
			return 400;
		return PT_OK;
	case CH_TR_VALUE:
		if (ch == '\r')
			c->state = CH_TR_LF;
		else if (!HTTP_IS(ch, C_FIELD))
			return 400;
		return PT_OK;
	case CH_TR_LF: c->state = CH_TR_LINE0; return ch == '\n' ? PT_OK : 400;
	default:
		PT_ASSERT(c->state == CH_TR_END_LF);
		c->state = CH_DONE;
		return ch == '\n' ? PT_OK : 400;
	}
}

int
pt_http_chunked_parse(struct pt_http_chunked *c, const char **p,
		      const char *end, struct pt_str *data)
{
	const char *q = *p;

	while (q < end && c->state != CH_DONE && c->state != CH_ERROR) {
		unsigned char ch = (unsigned char)*q;
		int rc;

		if (c->state == CH_DATA) {
			size_t n = (size_t)PT_MIN((uint64_t)(end - q), c->size);

			data->data = q;
			data->len = n;
			c->size -= n;
			if (c->size == 0)
				c->state = CH_DATA_CR;
			*p = q + n;
			return PT_OK;
		}
		if (c->state >= CH_TR_LINE0) {
			rc = http_chunk_trailer(c, ch);
		} else {
			if (c->state < CH_SIZE_LF && ch != '\r' &&
			    ++c->line_len > c->line_max)
				rc = 400;
			else
				rc = http_chunk_line(c, ch);
		}
		if (rc != PT_OK) {
			c->state = CH_ERROR;
			break;
		}
		q++;
	}
	*p = q;
	if (c->state == CH_ERROR)
		return 400;
	return c->state == CH_DONE ? PT_DONE : PT_AGAIN;
}
