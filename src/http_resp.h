/*
 * http_resp.h: the strict parser of upstream (backend) HTTP/1.x response
 * heads, used by the proxy to read a backend's answer.
 *
 * A proxy must never relay a response whose end it can not find exactly:
 * a backend that disagrees with us about where a response ends could slip
 * a second response into the client's connection. So the parser refuses
 * everything that is not plainly HTTP/1.x (bare LF, NUL, obs-fold, bad
 * field names and values, conflicting lengths); every refusal is a 502
 * for the client, and *why carries a static message for the error log.
 *
 * Three steps, like the request parser (http_parse.h), on the caller's
 * buffer and without allocating:
 *
 *   1. pt_http_resp_scan()     incremental: finds the end of the head as
 *                              bytes arrive, within the limits;
 *   2. pt_http_resp_parse()    one strict pass over the complete head;
 *   3. pt_http_resp_framing()  where the body ends (RFC 9112 section 6.3)
 *                              and whether the connection may be reused.
 *
 * A chunked body is decoded by pt_http_chunked_parse() (http_parse.h).
 */
#ifndef PT_HTTP_RESP_H
#define PT_HTTP_RESP_H

#include "core.h"
#include "http_parse.h"

struct pt_http_resp_head {
	unsigned version;     /* 10 or 11 (1.2-1.9 read as 11) */
	int status;           /* 100..599 */
	struct pt_str reason; /* may be empty */
	struct pt_http_header *headers;
	unsigned nheaders;
	/* first field of each known kind, or NULL */
	struct pt_http_header *known[PT_H__COUNT];
	unsigned dup; /* bit (1u << id) set: field id occurs more than once */
	char *base;   /* the buffer given to pt_http_resp_parse() */

	/* set by pt_http_resp_framing() */
	int64_t content_length;   /* -1: none (always -1 when no_body) */
	unsigned chunked : 1;     /* body in chunked coding */
	unsigned until_close : 1; /* body delimited by the connection's close */
	unsigned no_body : 1;     /* 1xx, 204, 304, a HEAD request, or a 2xx
				     to CONNECT */
	unsigned keepalive : 1;   /* backend connection reusable after this */
	unsigned conn_upgrade : 1; /* Connection lists "upgrade" (HTTP/1.1) */
};

/*
 * State of pt_http_resp_scan() between reads; zero it for a new head.
 * Only offsets are kept, so the buffer may move between calls.
 */
struct pt_http_resp_scan {
	size_t pos;        /* bytes examined so far */
	size_t line_start; /* offset of the line being scanned */
	size_t start;      /* offset of the status line (after empty lines) */
	unsigned lines;    /* header field lines completed */
	unsigned state;    /* private: where the status-line check stands */
	size_t head_len;   /* on PT_OK: bytes from buf[0] to the end of the
			      head, final CRLF included */
};

/*
 * Scan buf[0..len) for the end of a response head, resuming where the
 * last call stopped (len only grows between calls; buf may move). Empty
 * lines (CRLF) before the status line are skipped, as llhttp and HAProxy
 * do: some backends send one after a body. Returns PT_AGAIN, PT_OK
 * (s->start and s->head_len set: the head is buf[0..head_len), its status
 * line at buf[start]) or PT_ERROR with *why set.
 *
 * The status line is checked byte by byte as it arrives, so a backend
 * speaking something else (HTTP/2, ICY, HTTP/0.9) is refused at once;
 * each header line is checked when complete (CRLF, no leading
 * whitespace, field syntax). The verdict never depends on how the bytes
 * were split between calls. Limits as for requests: lim->line_max counts
 * a line without its CRLF, lim->head_max every byte from buf[0],
 * lim->headers_max the field lines.
 */
int pt_http_resp_scan(struct pt_http_resp_scan *s, const char *buf, size_t len,
		      const struct pt_http_limits *lim, const char **why);

/*
 * Strict parse of a complete head buf[0..len) (as found by the scan:
 * leading empty lines are skipped here too, so buf may be the scanned
 * buffer itself or start at s->start). hdrs has room for max fields.
 * status-line = HTTP-version SP 3DIGIT [ SP reason-phrase ] CRLF, the
 * version HTTP/1.x, the status 100..599; then the field lines, with the
 * rules of the request parser. Returns PT_OK or PT_ERROR (*why). Slices
 * point into buf; nothing is written to it.
 */
int pt_http_resp_parse(char *buf, size_t len, struct pt_http_resp_head *h,
		       struct pt_http_header *hdrs, unsigned max,
		       const char **why);

/*
 * Body framing of a parsed head per RFC 9112 section 6.3, given the
 * method of the request it answers (a PT_HTTP_* bit). Returns PT_OK or
 * PT_ERROR (*why).
 *
 * Content-Length must be digits (OWS around), several equal values (in a
 * list or in repeated fields) count as one, different ones are an error;
 * Transfer-Encoding is a list of tokens with optional parameters, must
 * not come with Content-Length nor in HTTP/1.0, and gives chunked when it
 * ends with exactly one bare "chunked", a body read until close when it
 * does not. These checks hold for every response, even one without body.
 * Then: no body for 1xx, 204, 304, HEAD, and 2xx to CONNECT; else
 * chunked, else Content-Length, else until close.
 *
 * keepalive: HTTP/1.1 without "close", HTTP/1.0 with "keep-alive" in
 * Connection (a list of tokens, any case); never for a body read until
 * close, a 101 or a 2xx to CONNECT (the connection becomes a tunnel).
 * For 100 and 103 (interim) it means what the final response says; the
 * caller reads that next, on the same connection.
 */
int pt_http_resp_framing(struct pt_http_resp_head *h, unsigned req_method,
			 const char **why);

#endif
