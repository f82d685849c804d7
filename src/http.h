/*
 * http.h: the HTTP/1.1 server: connections, requests, virtual servers,
 * locations, the phase engine and the output path.
 *
 * A request's life (DESIGN.md section 3): the connection reads a head
 * (http_request.c), the phase engine runs the handlers of each phase
 * (http_phase.c), one content handler produces the response through the
 * header and body filters, the last of which write to the socket
 * (http_output.c); the log phase runs when the response is complete, and
 * the connection then waits for the next request holding no buffer.
 */
#ifndef PT_HTTP_H
#define PT_HTTP_H

#include "core.h"
#include "buf.h"
#include "event.h"
#include "http_parse.h"
#include "listen.h"
#include "module.h"

#include <time.h>

struct pt_cycle;
struct pt_pool;
struct pt_regex;
struct pt_worker;
struct pt_http_request;
struct pt_conf;

/* ---- connections ------------------------------------------------------ */

struct pt_conn {
	struct pt_io io; /* first: the event loop sees a pt_io */
	struct pt_timer timer;
	struct pt_posted posted;
	struct pt_listener *ls;
	struct pt_worker *w;
	const struct pt_http_addr *addr; /* servers behind the local address */
	struct pt_http_request *req;     /* current request, or NULL */
	struct pt_conn *prev, *next;     /* worker's idle or active list */

	/* the header buffer; NULL while idle */
	struct pt_http_scan scan; /* how far the head in buf was scanned */
	char *buf;
	uint32_t buf_size, buf_pos, buf_last;
	uint32_t nrequests;
	uint64_t number; /* for logs */
	int64_t lingering_end;

	struct pt_sockaddr peer;
	/* the client's address: peer, unless a PROXY protocol header
	 * named another (proxy_addr); what a request starts from */
	const struct pt_sockaddr *client;
	struct pt_sockaddr proxy_addr;
	struct ssl_st *ssl; /* TLS session, NULL for plain TCP (sockio.h) */
	/* the server SNI chose (its SSL_CTX), NULL before a handshake */
	struct pt_http_server *tls_server;
	unsigned proxy_wait : 1;     /* the PROXY header is still to come */
	unsigned proxy_has_addr : 1; /* proxy_addr is set */
	unsigned idle : 1;      /* on the worker's idle list */
	unsigned keepalive : 1; /* between requests */
	unsigned closing : 1;   /* closed: freed after this event batch */
	unsigned lingering : 1; /* draining input before close */
	unsigned plain_on_tls : 1; /* plain HTTP on a TLS address: 400 */
};

/* ---- virtual servers and locations ------------------------------------ */

enum {
	PT_LOC_EXACT = 1,   /* = /path */
	PT_LOC_PREFIX,      /* /path */
	PT_LOC_PREFIX_STOP, /* ^~ /path: no regex search if longest */
	PT_LOC_REGEX,       /* ~ pattern */
	PT_LOC_REGEX_CASE,  /* ~* pattern */
};

struct pt_http_location {
	const char *name; /* as written */
	unsigned match;   /* PT_LOC_* */
	struct pt_str prefix;
	struct pt_regex *re;
	void **loc_conf;
	const char *file;
	unsigned line;
};

struct pt_http_server {
	void **srv_conf;
	void **loc_conf; /* server level, used when no location matches */
	struct pt_http_location **exact, **prefix, **regex;
	unsigned nexact, nprefix, nregex;
	const char *file;
	unsigned line;
	const char *first_name; /* for logs */
};

/* A server_name entry of an address, in lookup order. */
struct pt_http_name {
	struct pt_str name; /* lower-case; wildcards without '*' part */
	unsigned kind;      /* exact, leading or trailing wildcard, regex */
	struct pt_regex *re;
	struct pt_http_server *server;
};

/* The servers reachable through one local address. */
struct pt_http_addr {
	struct pt_sockaddr addr;
	struct pt_http_server *default_server;
	struct pt_http_name *names;
	unsigned nnames;
	struct pt_http_server **servers; /* every server listening here */
	unsigned nservers;
	unsigned proxy_protocol : 1; /* connections begin with a PROXY
				      * protocol header */
	unsigned ssl : 1;            /* connections begin with a TLS
				      * handshake (listen flag "ssl") */
};

/* What a listener's ctx points to. */
struct pt_http_port {
	struct pt_http_addr *addrs; /* several when a wildcard serves them */
	unsigned naddrs;
};

/*
 * The server of ha that serves host (lower-case, no port): exact name,
 * then leading and trailing wildcards (longest first), then regexes in
 * config order, else ha's default server. Never NULL. Used for Host and
 * for SNI.
 */
struct pt_http_server *pt_http_find_server(const struct pt_http_addr *ha,
					   struct pt_str host);

/* ---- the core module's configuration ---------------------------------- */

struct pt_http_main_conf {
	struct pt_http_server **servers;
	unsigned nservers;
	struct pt_http_phase *engine; /* flattened phase handlers */
	unsigned engine_start[PT_PHASE_COUNT + 1];
	pt_header_filter_fn *header_filters; /* first to last */
	pt_body_filter_fn *body_filters;
	unsigned nheader_filters, nbody_filters;
	struct pt_http_mime *mime;
	const char *mime_types;
	const config_setting_t *mime_types_node;
};

struct pt_http_srv_conf {
	struct pt_strlist listen;
	struct pt_strlist server_name;
	int64_t client_header_timeout;
	int64_t large_header_buffer;
	int64_t max_headers;
	struct pt_http_server *server;
	const config_setting_t *listen_node, *names_node;
};

struct pt_http_loc_conf {
	int64_t client_body_timeout;
	int64_t send_timeout;
	int64_t keepalive_timeout;
	int64_t keepalive_requests;
	int64_t client_max_body_size;
	const char *default_type;
	int server_tokens;
	struct pt_http_location *location;
};

extern const struct pt_module pt_http_core_module;

/* The HTTP core module's place in pt_modules[] (PT_CORE_MODULES). */
#define PT_HTTP_CORE_INDEX 1
#define pt_http_core_loc(r) \
	((struct pt_http_loc_conf *)(r)->loc_conf[PT_HTTP_CORE_INDEX])
#define pt_http_core_srv(r) \
	((struct pt_http_srv_conf *)(r)->srv_conf[PT_HTTP_CORE_INDEX])

/* ---- requests ---------------------------------------------------------- */

struct pt_http_out_header {
	struct pt_str name, value;
	struct pt_http_out_header *next;
};

struct pt_http_response {
	int status;
	int64_t content_length; /* -1: unknown */
	time_t last_modified;   /* -1: none */
	struct pt_str content_type;
	struct pt_str etag;
	struct pt_str location;
	struct pt_str content_range;
	struct pt_str upgrade;   /* 101: the protocol switched to */
	struct pt_http_out_header *headers, **tail;
	unsigned chunked : 1;    /* the producer frames an unknown-length
				  * body in chunks; cleared by the head when
				  * the client can not take them (HTTP/1.0) */
};

/* State of a request body being read or discarded. */
struct pt_http_body {
	int64_t rest; /* Content-Length bytes still to come */
	int64_t received;
	struct pt_http_chunked chunked;
	unsigned is_chunked : 1;
	unsigned done : 1;
};

struct pt_http_request {
	struct pt_conn *conn;
	struct pt_pool *pool;
	/* the client's address for $remote_addr, logs, ip_hash and
	 * X-Forwarded-For: conn->client, or what a trusted proxy's field
	 * says (mod_realip; then in r->pool) */
	const struct pt_sockaddr *client;
	struct pt_http_req_head h; /* parsed head, slices of conn->buf */
	struct pt_str request_line;
	struct pt_str uri;   /* decoded, normalized path */
	struct pt_str args;  /* raw query */
	struct pt_str exten; /* extension of uri, without the dot */

	struct pt_http_server *server;
	struct pt_http_location *location;
	void **srv_conf;
	void **loc_conf;
	void **ctx; /* per module */
	unsigned phase; /* index into the phase engine */

	struct pt_http_response out;
	struct pt_chain *pending; /* written to the socket as it drains */
	struct pt_chain **pending_tail;
	char *head_buf; /* the header buffer holding h, once the connection
			   reads a discarded body into another one */
	uint32_t head_buf_size;
	char *bounce;        /* file data read for a no_sendfile buffer */
	uint32_t bounce_pos, bounce_last;
	off_t head_bytes;    /* bytes of the response head */
	off_t bytes_sent;    /* all bytes written to the socket */
	int64_t start_ms;    /* monotonic */
	int64_t start_wall_ms;
	struct pt_http_body body;
	char request_id[33];

	/* a producer that streams (the proxy) is called when the client's
	 * socket is readable (body bytes, or a close) and when the output
	 * drained some of what was pending */
	void (*read_handler)(struct pt_http_request *r);
	void (*write_handler)(struct pt_http_request *r);

	unsigned header_only : 1;  /* HEAD or a status without body */
	unsigned header_sent : 1;
	unsigned body_sent_all : 1; /* the last buffer went into pending */
	unsigned keepalive : 1;
	unsigned discarding : 1;   /* reading a body nobody wants */
	unsigned expect_tested : 1;
	unsigned error_page : 1;
	unsigned logged : 1;
	unsigned finalized : 1;
	unsigned client_gone : 1;  /* a write met EPIPE/ECONNRESET */
};

/* ---- phase engine ------------------------------------------------------ */

struct pt_http_phase;
typedef int (*pt_phase_checker_fn)(struct pt_http_request *r,
				   const struct pt_http_phase *ph);

struct pt_http_phase {
	pt_phase_checker_fn checker;
	pt_phase_fn handler;
	unsigned next; /* index of the first handler of the next phase */
};

/* Build the phase engine and filter chains from the modules' hooks. */
int pt_http_build_engine(struct pt_conf *cf, struct pt_http_main_conf *mc);

/* Run (or resume) the phases of r. */
void pt_http_run_phases(struct pt_http_request *r);

/* ---- variables and templates ------------------------------------------ */

enum { PT_VAR_PREFIX = 1 }; /* name is a prefix: $arg_NAME, $http_NAME */

typedef int (*pt_var_fn)(struct pt_http_request *r, struct pt_str *out,
			 struct pt_str arg);

struct pt_http_var {
	const char *name;
	unsigned flags;
	pt_var_fn get;
};

struct pt_tpl_part {
	struct pt_str lit; /* literal text before the variable */
	const struct pt_http_var *var; /* NULL for a trailing literal */
	struct pt_str arg;
};

/* A string with $variables, compiled once at load. */
struct pt_tpl {
	struct pt_tpl_part *parts;
	unsigned nparts;
	struct pt_str text; /* the whole value when it has no variable */
};

/*
 * Compile s into *out (memory from cf's pool). "$name" is a variable,
 * "$$" a literal '$'. An unknown variable is reported at node (file:line)
 * and gives PT_ERROR.
 */
int pt_tpl_compile(struct pt_conf *cf, const config_setting_t *node,
		   const char *s, struct pt_tpl *out);
/*
 * One member of a group of header fields set by templates
 * (proxy_set_header, add_header: { Name = "value"; }): the name must be a
 * field name (copied into cf's pool), the value a string without a line
 * break, and neither may be a field that frames the message
 * (Content-Length, Transfer-Encoding, Connection, Upgrade). Errors name
 * s and the member's file:line. PT_OK or PT_ERROR.
 */
int pt_http_field_tpl(struct pt_conf *cf, const struct pt_setting *s,
		      const config_setting_t *e, struct pt_str *name,
		      struct pt_tpl *value);

/* Evaluate into the request pool. PT_OK or PT_ERROR (out of memory). */
int pt_tpl_eval(struct pt_http_request *r, const struct pt_tpl *t,
		struct pt_str *out);
/*
 * Evaluate into dst[0..cap), passing each variable's value through esc
 * (which may grow text at most max_expand times; NULL: copy as is; an
 * empty value is written as '-' when esc is given). Values are cut to
 * fit, literal text never. Returns the bytes written; nothing allocated.
 */
typedef size_t (*pt_escape_fn)(char *dst, const char *src, size_t len);
size_t pt_tpl_eval_into(struct pt_http_request *r, const struct pt_tpl *t,
			char *dst, size_t cap, pt_escape_fn esc,
			size_t max_expand);

/*
 * The variable a name (without '$') refers to, among every module's
 * table; for a prefix variable ($arg_NAME) *arg is the part after the
 * prefix. NULL if there is none. Config time: a linear search.
 */
const struct pt_http_var *pt_http_var_find(const char *name, size_t len,
					   struct pt_str *arg);

/* ---- request processing (http_request.c) ------------------------------- */

/* The listener's handler for a new connection: wait for a request head. */
void pt_http_init_conn(struct pt_conn *c);

/*
 * Finish r with rc: PT_DONE (the whole response is queued: its last
 * buffer went through pt_http_output), PT_AGAIN (suspended: nothing to do
 * now), PT_ERROR (500) or an HTTP status (a special response, or a close
 * if the head was already sent). r may be freed when it returns: the
 * caller must not touch it again.
 *
 * A handler that produces its body over several events returns PT_AGAIN
 * from its phase, and calls pt_http_finalize(r, PT_DONE) itself once it
 * has queued the last buffer; the request then completes when the socket
 * has taken everything.
 */
void pt_http_finalize(struct pt_http_request *r, int rc);

/* End r and close its connection now, whatever was sent: the client went
 * away, or a response can not be completed. status is logged when no
 * head was sent (499: the client closed first). r is freed. */
void pt_http_terminate(struct pt_http_request *r, int status);

/* Whether the connection stays usable after an error status. */
int pt_http_status_keeps_conn(int status);

/* The response of a status with no handler: error page or redirect. */
int pt_http_special_response(struct pt_http_request *r, int status);

/* Turn keep-alive off if the location or the worker says so. */
void pt_http_keepalive_check(struct pt_http_request *r);
/* Run the LOG phase handlers once. */
void pt_http_log_phase(struct pt_http_request *r);
/* Seed the per-process generator of request ids (after fork). */
void pt_http_seed_random(void);

/* PT_OK, or 413 if the declared Content-Length exceeds
 * client_max_body_size (of the location when known, else the server's). */
int pt_http_body_declared_ok(struct pt_http_request *r);

/*
 * Read the request body as it arrives, for a handler that streams it:
 * *data is the next slice of body bytes (chunked coding removed), valid
 * until the next call. Returns PT_OK (data), PT_AGAIN (wait: the
 * request's read_handler runs when more arrives), PT_DONE (the body is
 * complete) or a status (400 malformed or cut short, 413 over
 * client_max_body_size, 500). Sends "100 Continue" first when the client
 * asked for it.
 */
int pt_http_body_next(struct pt_http_request *r, struct pt_str *data);

/* Discard the request body; PT_OK, or a status (400, 413, 500). A declared
 * length over client_max_body_size gives 413 before anything is read. */
int pt_http_discard_body(struct pt_http_request *r);

/* Select the location of r and its conf; PT_OK or a status. */
int pt_http_find_location(struct pt_http_request *r);

/* ---- between http_request.c and http_body.c only ----------------------- */

/*
 * Most bytes one call of a handler that drops input (a discarded body, a
 * lingering close) reads before it lets the other connections run: a
 * client that sends as fast as we read would otherwise hold the worker.
 * The handler then posts itself and keeps io.readable set, since no new
 * edge will announce the bytes already waiting.
 */
#define PT_HTTP_READ_BUDGET (64 * 1024)

/* Make room at the end of c's header buffer (taking one if it has none),
 * growing it up to head_max. PT_OK, or 431 (full) or 500. */
int pt_http_buf_room(struct pt_conn *c, size_t head_max);
/* Run c's read handler again after this batch of events. */
void pt_http_post_read(struct pt_conn *c);
/* Give r the header buffer its parsed head points into, and c a new one
 * (before a body is read from the socket). PT_OK or PT_ERROR. */
int pt_http_detach_head(struct pt_http_request *r);
/* Read and drop more of a discarded body: PT_OK or a status. */
int pt_http_discard_more(struct pt_http_request *r);

/* ---- output (http_output.c) --------------------------------------------- */

/* Run the header filters; the last one queues the head (written with the
 * first body bytes). PT_OK or PT_ERROR. */
int pt_http_send_header(struct pt_http_request *r);
/*
 * Run the body filters on in (a buffer marked last_buf ends the body);
 * the last filter queues the buffers and writes what the socket takes.
 * PT_OK (all written), PT_AGAIN (the rest is written as the socket
 * drains: the buffers must stay valid until the request ends) or
 * PT_ERROR. The chain links become the output path's.
 */
int pt_http_output(struct pt_http_request *r, struct pt_chain *in);
/* For a filter: pass on to the next one (next is the filter's argument). */
int pt_http_next_header_filter(struct pt_http_request *r, unsigned next);
int pt_http_next_body_filter(struct pt_http_request *r, struct pt_chain *in,
			     unsigned next);
/* The last filters: queue the head; queue the body and write. */
int pt_http_queue_header(struct pt_http_request *r);
int pt_http_queue_body(struct pt_http_request *r, struct pt_chain *in);
/* Write what is pending; PT_OK (all written), PT_AGAIN or PT_ERROR. */
int pt_http_flush(struct pt_http_request *r);

/* Add a response field; name and value are not copied: they must live
 * as long as the request (literals or r->pool). PT_OK or PT_ERROR. */
int pt_http_add_header(struct pt_http_request *r, const char *name,
		       size_t nlen, const char *value, size_t vlen);
/* "NNN Reason" of a status, NULL if we know no reason phrase. */
const char *pt_http_status_text(int status, size_t *len);
/* The same, or "NNN " (from r's pool) without a known phrase. */
const char *pt_http_status_line(struct pt_http_request *r, int status,
				size_t *len);

/* Content-Type for an extension (lower-cased match); default if none. */
struct pt_str pt_http_mime_type(struct pt_http_request *r, struct pt_str ext);
int pt_http_mime_load(struct pt_conf *cf, struct pt_http_main_conf *mc);

/* Log prefix "*N client A, request "..."" for r's connection. */
void pt_http_log(struct pt_http_request *r, int level, int err,
		 const char *fmt, ...) PT_PRINTF(4, 5);
void pt_conn_log(struct pt_conn *c, int level, int err, const char *fmt,
		 ...) PT_PRINTF(4, 5);

#endif
