/*
 * http_parse.h: the strict HTTP/1.x message parser (RFC 9110, RFC 9112).
 *
 * The parser works in place on the caller's read buffer and never
 * allocates: every slice it returns points into that buffer. A request head
 * is handled in three steps so that the common case (the whole head in one
 * read) costs one pass:
 *
 *   1. pt_http_scan_head()   incremental: finds the end of the head as bytes
 *                            arrive, enforcing the size and count limits;
 *   2. pt_http_parse_head()  one strict pass over the complete head: request
 *                            line and header fields;
 *   3. pt_http_check_framing() and pt_http_check_host(): message semantics
 *                            (body length, connection, expectations, Host).
 *
 * Each step returns PT_OK, PT_AGAIN (scan only: need more bytes) or the HTTP
 * status to answer with (400, 414, 417, 431, 501, 505). A status means the
 * connection is closed after the answer: the framing can not be trusted.
 *
 * Request bodies in chunked coding are decoded by pt_http_chunked_parse(),
 * which streams: it returns slices of chunk data without copying.
 */
#ifndef PT_HTTP_PARSE_H
#define PT_HTTP_PARSE_H

#include "core.h"

/* Methods as bits, so that a set of allowed methods is one mask. */
enum {
	PT_HTTP_GET = 1u << 0,
	PT_HTTP_HEAD = 1u << 1,
	PT_HTTP_POST = 1u << 2,
	PT_HTTP_PUT = 1u << 3,
	PT_HTTP_DELETE = 1u << 4,
	PT_HTTP_OPTIONS = 1u << 5,
	PT_HTTP_TRACE = 1u << 6,
	PT_HTTP_CONNECT = 1u << 7,
	PT_HTTP_PATCH = 1u << 8,
	/* any other registered method (WebDAV, PURGE, QUERY, ...) */
	PT_HTTP_OTHER = 1u << 9,
};

/* Header fields the core looks at; others are PT_H_OTHER. */
enum pt_http_hdr_id {
	PT_H_OTHER = 0,
	PT_H_HOST,
	PT_H_CONNECTION,
	PT_H_CONTENT_LENGTH,
	PT_H_TRANSFER_ENCODING,
	PT_H_EXPECT,
	PT_H_UPGRADE,
	PT_H_TE,
	PT_H_KEEP_ALIVE,
	PT_H_PROXY_CONNECTION,
	PT_H_IF_MODIFIED_SINCE,
	PT_H_IF_UNMODIFIED_SINCE,
	PT_H_IF_NONE_MATCH,
	PT_H_IF_MATCH,
	PT_H_RANGE,
	PT_H_IF_RANGE,
	PT_H_COOKIE,
	PT_H_USER_AGENT,
	PT_H_REFERER,
	PT_H_AUTHORIZATION,
	PT_H_ACCEPT_ENCODING,
	PT_H_X_FORWARDED_FOR,
	PT_H__COUNT
};

struct pt_http_header {
	struct pt_str name;  /* as received (case kept) */
	struct pt_str value; /* leading and trailing OWS removed */
	unsigned id;         /* enum pt_http_hdr_id */
};

/* Forms of request-target (RFC 9112 section 3.2). */
enum {
	PT_TARGET_ORIGIN = 0, /* /path?query */
	PT_TARGET_ABSOLUTE,   /* http://authority/path?query */
	PT_TARGET_AUTHORITY,  /* host:port, CONNECT only */
	PT_TARGET_ASTERISK,   /* *, OPTIONS only */
};

struct pt_http_limits {
	size_t line_max; /* request line (414) and each header line (431) */
	size_t head_max; /* whole head (431) */
	unsigned headers_max; /* header field lines (431) */
};

/*
 * State of pt_http_scan_head() between reads; zero it for a new head. Only
 * offsets are kept, so the buffer may move between calls.
 */
struct pt_http_scan {
	size_t pos;        /* bytes examined so far */
	size_t line_start; /* offset of the line being scanned */
	size_t start;      /* offset of the request line (after empty lines) */
	unsigned lines;    /* lines completed, request line included */
	unsigned state;    /* private: where the request-line check stands */
	unsigned seen;     /* private: framing fields met so far */
	size_t head_len; /* on PT_OK: bytes of the head, final CRLF included */
};

struct pt_http_req_head {
	struct pt_str method;
	unsigned method_id;      /* PT_HTTP_* bit */
	struct pt_str target;    /* request-target as received */
	unsigned target_form;    /* PT_TARGET_* */
	struct pt_str scheme;    /* absolute-form only, e.g. "http" */
	struct pt_str authority; /* absolute-form and authority-form */
	struct pt_str path;      /* raw path, no query; "*" for asterisk-form;
				    a static "/" for an absolute-form target
				    without a path; empty for authority-form */
	struct pt_str query;     /* after '?', without it */
	unsigned has_query : 1;
	unsigned version; /* 10 (HTTP/1.0) or 11 (HTTP/1.1) */

	struct pt_http_header *headers;
	unsigned nheaders;
	/* first field of each known kind, or NULL */
	struct pt_http_header *known[PT_H__COUNT];
	unsigned dup; /* bit (1u << id) set: field id occurs more than once */
	char *base;   /* the buffer given to pt_http_parse_head() */

	/* set by pt_http_check_framing() */
	int64_t content_length; /* -1: none given */
	unsigned chunked : 1;
	unsigned keepalive : 1;       /* persistent after this exchange */
	unsigned conn_upgrade : 1;    /* Connection lists "upgrade" */
	unsigned expect_continue : 1; /* Expect: 100-continue */

	/* set by pt_http_check_host() */
	struct pt_str host; /* lower-cased, trailing dot and port removed; an
			       IPv6 literal keeps its brackets; empty for an
			       HTTP/1.0 request without Host */
	struct pt_str port; /* digits, may be empty */
};

/*
 * Scan buf[0..len) for the end of a request head, resuming where the last
 * call stopped (len only grows between calls, buf may move). Empty lines
 * before the request line are skipped (RFC 9112 section 2.2). Returns
 * PT_AGAIN, PT_OK (s->start and s->head_len set), 400 (bare CR or LF, NUL
 * in the head), 414 (request line over lim->line_max) or 431.
 *
 * The request line is checked as it arrives, so garbage is refused at
 * once: 400 (syntax), 501 (unknown method) and 505 (version) may come
 * from here too. Each header line is checked when complete: 400 for
 * obs-fold or whitespace after the request line, a malformed field, an
 * invalid or repeated Content-Length.
 * The verdict never depends on how the bytes were split between calls.
 * lim->line_max counts a line without its CRLF; lim->head_max counts every
 * byte from buf[0], leading empty lines included.
 */
int pt_http_scan_head(struct pt_http_scan *s, const char *buf, size_t len,
		      const struct pt_http_limits *lim);

/*
 * Parse a complete head (buf[0..len) holds exactly the head, as found by
 * pt_http_scan_head() from s->start). hdrs has room for max entries.
 * Returns PT_OK, 400 (syntax), 431 (more than max fields), 501 (well-formed
 * but unknown method) or 505 (well-formed but unsupported HTTP version).
 * HTTP/1.2 to 1.9 are read as 1.1 (RFC 9110 section 2.5). Asterisk-form is
 * for OPTIONS only, authority-form for CONNECT only (which needs it); an
 * absolute-form target must be http or https, with a host and without
 * userinfo; a fragment ('#') is refused in any form.
 */
int pt_http_parse_head(char *buf, size_t len, struct pt_http_req_head *h,
		       struct pt_http_header *hdrs, unsigned max);

/*
 * Body length and connection semantics of a parsed request head
 * (RFC 9112 sections 6 and 9). Returns PT_OK, 400 (bad or conflicting
 * Content-Length/Transfer-Encoding), 417 (an expectation other than
 * 100-continue) or 501 (a transfer coding other than chunked).
 * Transfer-Encoding must end in exactly one "chunked" (else 400); other
 * codings before it give 501. A CONNECT request has no body (RFC 9110
 * section 9.3.6): its framing fields are checked, then ignored, and it is
 * never kept alive: what follows the head belongs to the tunnel.
 */
int pt_http_check_framing(struct pt_http_req_head *h);

/*
 * Host of the request: the authority of an absolute-form or authority-form
 * target, else the Host field. HTTP/1.1 requires exactly one Host field,
 * which is validated even when the target overrides it. Lower-cases the
 * host in place (in h->base). Returns PT_OK or 400.
 */
int pt_http_check_host(struct pt_http_req_head *h);

/*
 * Validate and split one host[:port] (reg-name, IPv4 or [IPv6]); lower-cases
 * in place, removes one trailing dot. Returns PT_OK or 400.
 * A reg-name is unreserved and sub-delims characters without empty labels
 * ("a..b", ".a"; one trailing dot is removed) and without '%'; IP literals
 * are IPv6 (no zone) or IPvFuture; the port is at most 5 digits, <= 65535.
 */
int pt_http_parse_host(char *p, size_t len, struct pt_str *host,
		       struct pt_str *port);

/* Flags of pt_http_normalize_path(). */
#define PT_NORM_MERGE_SLASHES 0x1

/*
 * Percent-decode a raw path and remove dot segments (RFC 3986 5.2.4),
 * writing at most len bytes to out. A path that would climb above "/", an
 * invalid escape, an encoded or raw NUL, or a path not starting with '/'
 * gives 400. Returns PT_OK (*outlen set) or 400.
 * Decoding comes first, so "%2e%2e" is a dot segment and "%2F" a separator
 * (as in nginx); the output is decoded bytes and must be escaped again
 * before it is written into a message.
 */
int pt_http_normalize_path(const char *raw, size_t len, char *out,
			   size_t *outlen, unsigned flags);

/* Streaming decoder of the chunked transfer coding (RFC 9112 section 7.1). */
struct pt_http_chunked {
	unsigned state;
	uint64_t size;       /* bytes of chunk data still to come */
	size_t line_len;     /* bytes of the current size or trailer line */
	size_t trailers_len; /* bytes of trailer section so far */
	size_t line_max;     /* limit of a chunk-size line (with extensions,
				without CRLF) */
	size_t trailers_max; /* limit of the trailer section (all bytes after
				the last-chunk line, CRLFs included) */
};

/* Prepare c for a new body with the given limits. */
void pt_http_chunked_init(struct pt_http_chunked *c, size_t line_max,
			  size_t trailers_max);

/*
 * Decode from *p up to end. Returns:
 *   PT_OK     data is a slice of chunk data (len > 0); *p is advanced past
 *             it; call again for more;
 *   PT_AGAIN  all input consumed, more is needed;
 *   PT_DONE   the last chunk and the trailer section are complete; *p
 *             points just after the body;
 *   400       malformed (size, extension, CRLF, trailer) or over a limit.
 */
int pt_http_chunked_parse(struct pt_http_chunked *c, const char **p,
			  const char *end, struct pt_str *data);

/* Known header id of a field name (case-insensitive), PT_H_OTHER if none. */
unsigned pt_http_header_id(const char *name, size_t len);

/* Method bit of a method token, 0 if it is not a registered method. */
unsigned pt_http_method_id(const char *m, size_t len);

#endif
