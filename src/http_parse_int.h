/*
 * http_parse_int.h: what the request parser (http_parse.c) shares with the
 * upstream response parser (http_resp.c), and with nothing else: the
 * character classes, the field-line parser and the list walker. A private
 * header: the rest of the server uses http_parse.h and http_resp.h.
 */
#ifndef PT_HTTP_PARSE_INT_H
#define PT_HTTP_PARSE_INT_H

#include "core.h"
#include "http_parse.h"

/* Character classes, one bit each in pt_http_ctype[]. */
#define C_TCHAR  0x01 /* token (RFC 9110 section 5.6.2) */
#define C_FIELD  0x02 /* field-value byte: VCHAR, obs-text, SP, HTAB */
#define C_TARGET 0x04 /* request-target byte: VCHAR but '#' */
#define C_METHOD 0x08 /* method byte we accept: A-Z 0-9 '-' '_' */
#define C_HEX    0x10 /* HEXDIG */
#define C_HOST   0x20 /* reg-name byte: unreserved, sub-delims, no '%' */
#define C_QDTEXT 0x40 /* qdtext of a quoted-string, HTAB and SP included */
#define C_PATH   0x80 /* path byte: C_TARGET but '?' and '\\' */

extern const uint8_t pt_http_ctype[256];

#define HTTP_IS(c, cls) (pt_http_ctype[(unsigned char)(c)] & (cls))
#define HTTP_WS(c)      ((c) == ' ' || (c) == '\t')
#define HTTP_DIGIT(c)   ((unsigned)(unsigned char)(c) - '0' < 10u)

/*
 * Parse one field line p[0..len), CRLF excluded: a token, ':' at once,
 * then the value without its surrounding OWS. Sets hd->name and
 * hd->value, not hd->id. Returns PT_OK or 400.
 */
int pt_http_field_line(const char *p, size_t len, struct pt_http_header *hd);

/*
 * Parse the field lines of p[0..len), which must end with the empty line
 * and nothing after it. Fills hdrs (room for max, *n used), the first
 * field of each known kind in known[] and the duplicates in *dup.
 * Returns PT_OK, 400 or 431 (more than max fields).
 */
int pt_http_parse_fields(const char *p, size_t len, struct pt_http_header *hdrs,
			 unsigned max, unsigned *n,
			 struct pt_http_header **known, unsigned *dup);

/*
 * The elements of every field of one kind, in order, as the one list they
 * mean together (RFC 9110 section 5.3); OWS trimmed, empty ones included.
 * first is the first field of the kind (or NULL), end the end of the
 * header array; the other fields of the kind are found by their id.
 */
struct pt_http_list {
	const struct pt_http_header *f, *end; /* current field, array end */
	const char *p;                        /* next element in f->value */
};

void pt_http_list_init(struct pt_http_list *l,
		       const struct pt_http_header *first,
		       const struct pt_http_header *end);

/* The next element in *e: 1, or 0 when the list is done. */
int pt_http_list_next(struct pt_http_list *l, struct pt_str *e);

/* Is t a non-empty token? */
int pt_http_is_token(struct pt_str t);

#endif
