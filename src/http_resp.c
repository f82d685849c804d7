/*
 * http_resp.c: the strict parser of upstream HTTP/1.x response heads.
 *
 * The same design as the request parser (http_parse.c), whose field-line
 * parser, character classes, header ids and list walker it shares through
 * http_parse_int.h: pt_http_resp_scan() finds the end of a head as bytes
 * arrive, keeping only offsets and deciding everything on fixed windows of
 * bytes, so that a head fed byte by byte gets the verdict it gets whole;
 * pt_http_resp_parse() then makes one strict pass over the complete head,
 * and pt_http_resp_framing() decides where the body ends.
 *
 * Strictness is the point: a response is refused (502 for the client)
 * whenever its end could be read two ways. Every refusal sets *why to a
 * static string for the error log; nothing is allocated or written.
 *
 * Callers: the proxy's upstream read path, on the buffer of one backend
 * connection.
 */
#include "core.h"
#include "http_resp.h"
#include "http_parse.h"
#include "http_parse_int.h"
#include "util.h"

/*
 * States of the status-line automaton, in order; the five RS_PROTO states
 * expect the bytes of "HTTP/" one by one, the three RS_CODE ones the
 * digits of the status.
 */
enum {
	RS_EMPTY = 0, /* skipping empty lines before the status line */
	RS_PROTO,
	RS_MAJOR = RS_PROTO + 5,
	RS_DOT,
	RS_MINOR,
	RS_SP1,
	RS_CODE,
	RS_SP2 = RS_CODE + 3, /* SP before the reason, or CR */
	RS_REASON,
	RS_LF,
	RS_FIELDS /* status line done: header lines */
};

static int
resp_err(const char **why, const char *msg)
{
	*why = msg;
	return PT_ERROR;
}

/*
 * One byte c of the status line in state *st (RS_PROTO to RS_LF).
 * Returns PT_AGAIN (go on), PT_OK (the LF that ends the line) or
 * PT_ERROR.
 */
static int
resp_status_byte(unsigned *st, unsigned char c, const char **why)
{
	unsigned s = *st, next = s + 1;

	if (c == '\n' && s != RS_LF)
		return resp_err(why, "bare LF in the status line");
	if (s < RS_MAJOR) {
		if (c != (unsigned char)"HTTP/"[s - RS_PROTO])
			return resp_err(why, "not an HTTP/1.x status line");
	} else if (s == RS_MAJOR) {
		if (c != '1')
			return resp_err(
				why, HTTP_DIGIT(c) ? "HTTP version not 1.x"
						   : "malformed HTTP version");
	} else if (s == RS_DOT || s == RS_MINOR) {
		if (s == RS_DOT ? c != '.' : !HTTP_DIGIT(c))
			return resp_err(why, "malformed HTTP version");
	} else if (s == RS_SP1) {
		if (c != ' ')
			return resp_err(why, "no SP after the HTTP version");
	} else if (s < RS_SP2) {
		if (!HTTP_DIGIT(c))
			return resp_err(why, "malformed status code");
		if (s == RS_CODE && (c < '1' || c > '5'))
			return resp_err(why, "status code not in 100..599");
	} else if (s == RS_SP2) {
		/* "HTTP/1.1 200\r\n": no SP before an empty reason, as
		   llhttp and nginx allow */
		if (c != ' ' && c != '\r')
			return resp_err(why, "malformed status code");
		next = c == ' ' ? RS_REASON : RS_LF;
	} else if (s == RS_REASON) {
		if (c != '\r')
			return resp_err(why,
					"invalid byte in the reason phrase");
	} else {
		PT_ASSERT(s == RS_LF);
		if (c != '\n')
			return resp_err(why,
					"CR without LF in the status line");
		*st = RS_FIELDS;
		return PT_OK;
	}
	*st = next;
	return PT_AGAIN;
}

/*
 * Run the status-line automaton over l[*ip..end) from state *st (offsets
 * relative to the start of the line). A byte other than CR or LF at
 * offset lmax and beyond makes the line too long, any byte at hmax and
 * beyond the head too large. Returns PT_AGAIN (valid so far, *ip = end),
 * PT_OK (*ip just past the LF) or PT_ERROR. The reason phrase, the only
 * long part, is skipped in a tight loop.
 */
static int
resp_status_run(unsigned *st, const char *l, size_t *ip, size_t end,
		size_t lmax, size_t hmax, const char **why)
{
	size_t i = *ip, stop = PT_MIN(end, PT_MIN(lmax, hmax));
	int rc = PT_AGAIN;

	while (i < end) {
		unsigned char c = (unsigned char)l[i];

		if (*st < RS_LF && c != '\r' && c != '\n' && i >= lmax) {
			rc = resp_err(why, "status line too long");
			break;
		}
		if (i >= hmax) {
			rc = resp_err(why, "response head too large");
			break;
		}
		if (*st == RS_REASON && i < stop && HTTP_IS(c, C_FIELD)) {
			while (i < stop && HTTP_IS(l[i], C_FIELD))
				i++;
			continue; /* the limits again, then the next byte */
		}
		rc = resp_status_byte(st, c, why);
		if (rc != PT_AGAIN) {
			i += rc == PT_OK;
			break;
		}
		i++;
	}
	*ip = i;
	return rc;
}

/* ---- scanning ---------------------------------------------------------- */

/* Skip CRLFs before the status line; PT_OK once it starts. */
static int
resp_scan_empty(struct pt_http_resp_scan *s, const char *buf, size_t len,
		const struct pt_http_limits *lim, const char **why)
{
	while (s->pos < len) {
		size_t p = s->pos;

		if (p >= lim->head_max)
			return resp_err(why, "response head too large");
		if (buf[p] == '\n')
			return resp_err(why, "bare LF before the status line");
		if (buf[p] != '\r') {
			s->start = s->line_start = p;
			s->state = RS_PROTO;
			return PT_OK;
		}
		if (p + 1 >= len)
			return PT_AGAIN;
		if (buf[p + 1] != '\n')
			return resp_err(why, "bare CR before the status line");
		if (p + 1 >= lim->head_max)
			return resp_err(why, "response head too large");
		s->pos = p + 2;
	}
	return PT_AGAIN;
}

/* Why the field line p[0..len) (CRLF excluded) is invalid. */
static const char *
resp_field_why(const char *p, size_t len)
{
	size_t i = 0;

	if (len > 0 && HTTP_WS(p[0]))
		return "obs-fold or whitespace at the start of a header line";
	while (i < len && HTTP_IS(p[i], C_TCHAR))
		i++;
	if (i == len)
		return "header line without a colon";
	if (HTTP_WS(p[i]))
		return "whitespace before the colon of a header";
	if (p[i] != ':')
		return "invalid byte in a header name";
	if (i == 0)
		return "empty header name";
	for (; i < len; i++)
		if (p[i] == '\0' || p[i] == '\r')
			return p[i] ? "bare CR in a header value"
				    : "NUL in a header value";
	return "invalid byte in a header value";
}

/* The first empty line: the head is complete. */
static int
resp_scan_end(struct pt_http_resp_scan *s, const char *buf, size_t len,
	      const struct pt_http_limits *lim, const char **why)
{
	size_t ls = s->line_start;

	if (ls + 1 >= len)
		return PT_AGAIN;
	if (buf[ls + 1] != '\n')
		return resp_err(why, "bare CR in the response head");
	if (ls + 1 >= lim->head_max)
		return resp_err(why, "response head too large");
	s->pos = s->head_len = ls + 2;
	return PT_OK;
}

/*
 * Scan header lines up to the empty line that ends the head, as the
 * request scanner does: every line ends in CRLF, does not start with
 * whitespace and is a valid field line. A line is too long when no LF
 * comes within line_max + 2 bytes of its start, the head when no final
 * LF comes before head_max.
 */
static int
resp_scan_fields(struct pt_http_resp_scan *s, const char *buf, size_t len,
		 const struct pt_http_limits *lim, const char **why)
{
	for (;;) {
		size_t ls = s->line_start, lend, stop, j;
		struct pt_http_header hd;
		const char *lf = NULL;

		if (s->pos == ls) {
			if (ls >= len)
				return PT_AGAIN;
			if (ls >= lim->head_max)
				return resp_err(why, "response head too large");
			if (buf[ls] == '\r')
				return resp_scan_end(s, buf, len, lim, why);
			if (buf[ls] == '\n')
				return resp_err(why, "bare LF in the response "
						     "head");
			if (HTTP_WS(buf[ls]))
				return resp_err(why,
						resp_field_why(buf + ls, 1));
		}
		lend = lim->line_max > SIZE_MAX - 2 - ls
			       ? SIZE_MAX
			       : ls + lim->line_max + 2;
		stop = PT_MIN(lend, lim->head_max);
		if (s->pos < PT_MIN(len, stop))
			lf = memchr(buf + s->pos, '\n',
				    PT_MIN(len, stop) - s->pos);
		if (lf == NULL) {
			if (len < stop) {
				s->pos = len;
				return PT_AGAIN;
			}
			return resp_err(
				why, stop == lend ? "header line too long"
						  : "response head too large");
		}
		j = (size_t)(lf - buf);
		if (buf[j - 1] != '\r')
			return resp_err(why, "bare LF in a header line");
		if (pt_http_field_line(buf + ls, j - 1 - ls, &hd) != PT_OK)
			return resp_err(why,
					resp_field_why(buf + ls, j - 1 - ls));
		if (++s->lines > lim->headers_max)
			return resp_err(why, "too many header lines");
		s->pos = s->line_start = j + 1;
	}
}

int
pt_http_resp_scan(struct pt_http_resp_scan *s, const char *buf, size_t len,
		  const struct pt_http_limits *lim, const char **why)
{
	int rc;

	PT_ASSERT(s->pos <= len && s->state <= RS_FIELDS);
	if (s->head_len != 0)
		return PT_OK;
	if (s->state == RS_EMPTY) {
		rc = resp_scan_empty(s, buf, len, lim, why);
		if (rc != PT_OK)
			return rc;
	}
	if (s->state != RS_FIELDS) {
		size_t i = s->pos - s->start;
		size_t hmax =
			lim->head_max > s->start ? lim->head_max - s->start : 0;

		rc = resp_status_run(&s->state, buf + s->start, &i,
				     len - s->start, lim->line_max, hmax, why);
		s->pos = s->start + i;
		if (rc != PT_OK)
			return rc;
		s->line_start = s->pos;
	}
	return resp_scan_fields(s, buf, len, lim, why);
}

/* ---- parsing ----------------------------------------------------------- */

/*
 * Why pt_http_parse_fields() refused p[0..len): the first bad line, in
 * the scanner's words.
 */
static const char *
resp_fields_why(const char *p, size_t len)
{
	const char *end = p + len;
	struct pt_http_header hd;

	for (;;) {
		const char *lf = memchr(p, '\n', (size_t)(end - p));
		size_t n;

		if (lf == NULL)
			return "response head without its final empty line";
		if (lf == p || lf[-1] != '\r')
			return "bare LF in the response head";
		if (lf == p + 1)
			return "bytes after the end of the response head";
		n = (size_t)(lf - 1 - p);
		if (pt_http_field_line(p, n, &hd) != PT_OK)
			return resp_field_why(p, n);
		p = lf + 1;
	}
}

int
pt_http_resp_parse(char *buf, size_t len, struct pt_http_resp_head *h,
		   struct pt_http_header *hdrs, unsigned max, const char **why)
{
	unsigned st = RS_PROTO;
	size_t s = 0, i = 0;
	const char *l;
	int rc;

	memset(h, 0, sizeof(*h));
	h->base = buf;
	h->headers = hdrs;
	h->content_length = -1;
	while (len - s >= 2 && buf[s] == '\r' && buf[s + 1] == '\n')
		s += 2;
	l = buf + s;
	rc = resp_status_run(&st, l, &i, len - s, SIZE_MAX, SIZE_MAX, why);
	if (rc == PT_AGAIN)
		return resp_err(why, "response head ends in the status line");
	if (rc != PT_OK)
		return rc;

	/* the automaton vouches for "HTTP/1.d DDD[ reason]\r\n" */
	PT_ASSERT(i >= 14);
	h->version = l[7] == '0' ? 10 : 11;
	h->status = (l[9] - '0') * 100 + (l[10] - '0') * 10 + (l[11] - '0');
	h->reason.data = l + (i > 14 ? 13 : 12);
	h->reason.len = i > 14 ? i - 15 : 0;
	rc = pt_http_parse_fields(l + i, len - s - i, hdrs, max, &h->nheaders,
				  h->known, &h->dup);
	if (rc == 431)
		return resp_err(why, "more header fields than room for them");
	if (rc != PT_OK)
		return resp_err(why, resp_fields_why(l + i, len - s - i));
	return PT_OK;
}

/* ---- framing ----------------------------------------------------------- */

static void
resp_list_of(struct pt_http_list *l, const struct pt_http_resp_head *h,
	     unsigned id)
{
	pt_http_list_init(l, h->known[id], h->headers + h->nheaders);
}

/*
 * Content-Length (RFC 9110 section 8.6): every element of every field is
 * 1*DIGIT, and all are the same number (a list of equal values is one
 * value, as the RFC allows a recipient to read it).
 */
static int
resp_content_length(struct pt_http_resp_head *h, const char **why)
{
	struct pt_http_list l;
	struct pt_str e;
	uint64_t v, first = 0;
	int seen = 0;

	resp_list_of(&l, h, PT_H_CONTENT_LENGTH);
	while (pt_http_list_next(&l, &e)) {
		if (pt_parse_uint(e.data, e.len, INT64_MAX, &v) != PT_OK) {
			size_t k = 0;

			while (k < e.len && HTTP_DIGIT(e.data[k]))
				k++;
			return resp_err(why,
					k == e.len && k > 0
						? "Content-Length too large"
						: "invalid Content-Length");
		}
		if (seen && v != first)
			return resp_err(why, "different Content-Length values");
		first = v;
		seen = 1;
	}
	if (seen)
		h->content_length = (int64_t)first;
	return PT_OK;
}

/*
 * Transfer-Encoding (RFC 9112 section 6.1): a list of codings, each a
 * token with optional parameters; chunked, bare, at most once. *chunked:
 * it is the last coding (chunked framing); else the response is read
 * until the backend closes (RFC 9112 section 6.3, rule 4).
 */
static int
resp_te(const struct pt_http_resp_head *h, int *chunked, const char **why)
{
	struct pt_http_list l;
	struct pt_str e;
	int seen = 0;

	resp_list_of(&l, h, PT_H_TRANSFER_ENCODING);
	*chunked = 0;
	while (pt_http_list_next(&l, &e)) {
		size_t n = 0;

		while (n < e.len && HTTP_IS(e.data[n], C_TCHAR))
			n++;
		if (n == 0)
			return resp_err(why, "invalid Transfer-Encoding");
		*chunked = 0;
		if (n == 7 && pt_strncasecmp(e.data, "chunked", 7) == 0) {
			if (e.len != 7)
				return resp_err(why, "parameters on chunked");
			if (seen)
				return resp_err(why, "chunked applied twice");
			seen = *chunked = 1;
			continue;
		}
		while (n < e.len && HTTP_WS(e.data[n]))
			n++;
		if (n < e.len && e.data[n] != ';')
			return resp_err(why, "invalid Transfer-Encoding");
	}
	return PT_OK;
}

/* Connection options (RFC 9112 section 9.3): close, keep-alive, upgrade. */
static int
resp_connection(struct pt_http_resp_head *h, int *close, int *keep,
		const char **why)
{
	struct pt_http_list l;
	struct pt_str e;

	*close = *keep = 0;
	resp_list_of(&l, h, PT_H_CONNECTION);
	while (pt_http_list_next(&l, &e)) {
		if (e.len == 0)
			continue;
		if (!pt_http_is_token(e))
			return resp_err(why, "invalid Connection");
		if (PT_STR_CASEEQ(e, "close"))
			*close = 1;
		else if (PT_STR_CASEEQ(e, "keep-alive"))
			*keep = 1;
		else if (PT_STR_CASEEQ(e, "upgrade"))
			h->conn_upgrade = h->version >= 11;
	}
	return PT_OK;
}

int
pt_http_resp_framing(struct pt_http_resp_head *h, unsigned req_method,
		     const char **why)
{
	int chunked = 0, close, keep, tunnel;
	int st = h->status;

	h->content_length = -1;
	h->chunked = h->until_close = h->no_body = 0;
	h->keepalive = h->conn_upgrade = 0;
	if (resp_content_length(h, why) != PT_OK)
		return PT_ERROR;
	if (h->known[PT_H_TRANSFER_ENCODING] != NULL) {
		/* a sign of smuggling (RFC 9112 sections 6.1 and 6.3) */
		if (h->known[PT_H_CONTENT_LENGTH] != NULL)
			return resp_err(why, "both Content-Length and "
					     "Transfer-Encoding");
		/* RFC 9112 section 6.1: faulty framing in HTTP/1.0 */
		if (h->version < 11)
			return resp_err(why, "Transfer-Encoding in HTTP/1.0");
		if (resp_te(h, &chunked, why) != PT_OK)
			return PT_ERROR;
	}
	if (resp_connection(h, &close, &keep, why) != PT_OK)
		return PT_ERROR;

	/* RFC 9112 section 6.3, rules 1 and 2 */
	tunnel = (req_method & PT_HTTP_CONNECT) && st >= 200 && st < 300;
	if (st < 200 || st == 204 || st == 304 || (req_method & PT_HTTP_HEAD) ||
	    tunnel) {
		h->no_body = 1;
		h->content_length = -1;
	} else if (h->known[PT_H_TRANSFER_ENCODING] != NULL) {
		h->chunked = (unsigned)chunked;
		h->until_close = !chunked;
	} else if (h->content_length < 0) {
		h->until_close = 1;
	}
	h->keepalive = !close && (h->version >= 11 || keep) &&
		       !h->until_close && st != 101 && !tunnel;
	return PT_OK;
}
