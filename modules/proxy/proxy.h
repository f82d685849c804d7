/*
 * proxy.h: what the files of the proxy module share (modules/proxy/: a
 * module large enough for a folder of its own, DESIGN.md section 4).
 *
 * The module keeps the upstreams (upstream.c: the "upstreams" block, the
 * implicit upstream of proxy_pass "http://host:port", the shared zone of
 * peer states), the connections to backends (upconn.c: connect, the
 * per-worker keep-alive pools), the request and response heads
 * (proxy_head.c), the streaming of bodies and the Upgrade tunnel
 * (proxy_io.c, and proxy_splice.c for large bodies) and the active
 * health checks run by the helper process (health.c).
 */
#ifndef PT_PROXY_H
#define PT_PROXY_H

#include "core.h"
#include "event.h"
#include "http.h"
#include "http_resp.h"
#include "upstream.h"

struct pt_conf;
struct pt_cycle;
struct pt_shm_zone;
struct ssl_ctx_st;
struct ssl_session_st;
struct ssl_st;
struct proxy_tls;

extern const struct pt_module pt_mod_proxy;

/* proxy_next_upstream conditions (a mask). */
enum {
	PROXY_NEXT_ERROR = 1u << 0,
	PROXY_NEXT_TIMEOUT = 1u << 1,
	PROXY_NEXT_502 = 1u << 2,
	PROXY_NEXT_503 = 1u << 3,
	PROXY_NEXT_504 = 1u << 4,
	PROXY_NEXT_NON_IDEMPOTENT = 1u << 5,
	PROXY_NEXT_OFF = 1u << 6,
};

/* Fields the proxy writes itself, when proxy_set_header names them. */
enum {
	PROXY_SET_HOST = 1u << 0,
	PROXY_SET_XFF = 1u << 1,
	PROXY_SET_XFP = 1u << 2,
	PROXY_SET_XFH = 1u << 3,
	PROXY_SET_FORWARDED = 1u << 4,
	PROXY_SET_VIA = 1u << 5,
};

/* forwarded = */
enum { PROXY_FWD_OFF = 0, PROXY_FWD_X, PROXY_FWD_RFC7239, PROXY_FWD_BOTH };

struct proxy_set_header {
	struct pt_str name;
	struct pt_tpl value;
	unsigned id;    /* pt_http_header_id() of name */
	unsigned empty : 1; /* "": the field is removed */
};

struct proxy_main_conf {
	struct pt_upstream **ups;
	struct proxy_tls **tls;    /* per upstream (same index): NULL, or
				    * TLS to its servers */
	unsigned nups, nalloc;
	struct pt_shm_zone *zone;
	struct pt_cycle *cycle;
	struct pt_upstream_rt *rt; /* in a worker: one per upstream */
	struct pt_loop *loop;      /* in a worker */
	struct pt_upconn *dead;    /* closed in this batch of events */
	struct pt_posted reap;     /* frees them after it */
	int (*pipes)[2];           /* empty pipes kept for splice, at most
				    * PROXY_PIPES_KEPT */
	unsigned npipes;
	int need_helper;           /* an upstream has health checks */
};

struct proxy_loc_conf {
	const char *pass;
	const config_setting_t *pass_node;
	struct pt_upstream *upstream;
	int64_t connect_timeout, read_timeout, send_timeout;
	struct pt_strlist next_upstream;
	unsigned next_mask;
	int64_t next_tries;
	const config_setting_t *set_node; /* proxy_set_header group */
	struct proxy_set_header *set;
	unsigned nset;
	unsigned set_mask;   /* PROXY_SET_*: fields we would generate that
			      * proxy_set_header names, known at load */
	int set_given;
	int request_buffering, buffering;
	int64_t buffer_size, buffers;
	struct pt_strlist hide;
	int forwarded, via;
};

extern unsigned pt_proxy_index; /* of the module in pt_modules[] */
#define proxy_loc(r) \
	((struct proxy_loc_conf *)(r)->loc_conf[pt_proxy_index])

/* ---- upstream.c ----------------------------------------------------------- */

int pt_proxy_set_upstreams(struct pt_conf *cf, const struct pt_setting *s,
			   const config_setting_t *node, void *conf);
/* The upstream named name, or NULL. */
struct pt_upstream *pt_proxy_upstream_find(struct proxy_main_conf *mc,
					   const char *name);
/* The upstream of proxy_pass "http://host:port" (one per distinct
 * address). NULL on error (reported at node). */
struct pt_upstream *pt_proxy_upstream_implicit(struct pt_conf *cf,
					       struct proxy_main_conf *mc,
					       const char *url,
					       const config_setting_t *node);
/* After the config: balancers, the shared zone. PT_OK or PT_ERROR. */
int pt_proxy_upstreams_ready(struct pt_conf *cf, struct proxy_main_conf *mc);
/* In a worker: the per-worker state. PT_OK or PT_ERROR. */
int pt_proxy_upstreams_worker(struct proxy_main_conf *mc,
			      struct pt_loop *loop);
void pt_proxy_upstreams_exit(struct proxy_main_conf *mc);

/* Block tables, exported for the manual page's test. */
extern const struct pt_setting pt_upstream_block[];
extern const struct pt_setting pt_peer_block[];
extern const struct pt_setting pt_health_block[];
extern const struct pt_setting pt_upstream_tls_block[];

/* ---- proxy_tls.c: TLS to backends ------------------------------------------- */

struct proxy_tls_peer {
	const char *name;        /* verified (and sent as SNI unless an IP
				  * literal), or NULL: none */
	unsigned ip : 1;         /* name is an IP literal */
	struct ssl_session_st *sess; /* the peer's last session, in this
				      * process */
};

struct proxy_tls {
	struct ssl_ctx_st *ctx;  /* the cycle's; freed by its pool */
	int verify;
	struct proxy_tls_peer *peers; /* like u->peers */
	unsigned npeers;
};

/*
 * The TLS of upstream u (its servers are known): node is its "tls" group,
 * or, for proxy_pass "https://host:port", the proxy_pass setting with
 * server_name the host. The SSL_CTX is built now (files read, errors
 * reported at node). NULL on error.
 */
struct proxy_tls *pt_proxy_tls_conf(struct pt_conf *cf, struct pt_upstream *u,
				    const config_setting_t *node,
				    const char *server_name);
/* A client session to peer on fd, SNI and verified name set; with
 * session, it offers the peer's last session and keeps the new ones.
 * NULL on error (logged). The caller frees it (pt_tls_close). */
struct ssl_st *pt_proxy_tls_new(struct proxy_tls *t, unsigned peer, int fd,
				int session);
/* Why the handshake of ssl failed (OpenSSL's reason and the certificate
 * verification's), for a log line; forgets the peer's session. */
const char *pt_proxy_tls_failed(struct proxy_tls *t, unsigned peer,
				struct ssl_st *ssl);
/* Whether an idle TLS connection has nothing to say: records that are
 * not data are consumed; data, a close or an error: 0. */
int pt_proxy_tls_quiet(int fd, struct ssl_st *ssl);
/* Free the sessions this process kept (a worker's exit). */
void pt_proxy_tls_exit(struct proxy_tls *t);

/* ---- health.c: in the helper process ---------------------------------------- */

/* Start the active checks of every upstream that has them. */
int pt_proxy_health_init(struct proxy_main_conf *mc, struct pt_loop *loop);

/* ---- upconn.c: connections to backends ---------------------------------- */

struct pt_upconn {
	struct pt_io io; /* first: the event loop sees a pt_io */
	struct pt_timer timer;
	struct pt_loop *loop;
	struct proxy_main_conf *mc;
	struct pt_upstream *u;
	struct pt_upstream_rt *rt;
	unsigned peer;
	unsigned requests;       /* served on this connection */
	struct pt_upconn *prev, *next; /* in rt->idle (circular) */
	void *owner;             /* the request's proxy state, or NULL */
	struct ssl_st *ssl;      /* TLS to the peer, or NULL (sockio.h) */
	unsigned reused : 1;     /* taken from the keep-alive pool */
	unsigned connecting : 1; /* connect(2) in progress */
	unsigned handshaking : 1; /* the TLS handshake is in progress */
};

/*
 * A connection to peer i of u: an idle one from the worker's pool (that
 * the backend has not closed) unless fresh is set, or a new non-blocking
 * connect (and TLS handshake). PT_OK (ready: connected, or reused),
 * PT_AGAIN (call pt_upconn_setup() on its events until it is ready) or
 * PT_ERROR (errno set; logged by the caller).
 */
int pt_upconn_get(struct proxy_main_conf *mc, struct pt_upstream *u,
		  unsigned i, int fresh, struct pt_upconn **out);
/*
 * After an event on a connection being set up (connect, then the TLS
 * handshake on a TLS upstream): PT_OK (ready), PT_AGAIN (wait for the
 * next event) or PT_ERROR (errno, and *why for the log line).
 */
int pt_upconn_setup(struct pt_upconn *uc, const char **why);
/* Close uc now (it is freed after the current batch of events, which
 * may still name it). */
void pt_upconn_close(struct pt_upconn *uc);
/* Done with uc: keep it idle (when keep is set and the pool has room) or
 * close it. */
void pt_upconn_release(struct pt_upconn *uc, int keep);

/* ---- a request being proxied ------------------------------------------------ */

#define PROXY_MAX_TRIES 16 /* attempts recorded for $upstream_* */

struct proxy_try {
	unsigned peer;
	int status;          /* the backend's, or 502/504 of ours */
	int64_t connect_ms;  /* -1: never connected */
	int64_t header_ms;   /* -1: no head */
	int64_t response_ms; /* -1: not complete */
};

/* One buffer of the response body on its way to the client. */
struct proxy_slot {
	char *mem;
	struct pt_buf hdr, data;  /* chunk-size line, data */
	struct pt_chain lhdr, ldata;
	char line[24];            /* "\r\n%zx\r\n" */
	unsigned busy : 1;        /* queued and not yet written */
};

struct proxy_ctx {
	struct pt_http_request *r;
	struct proxy_main_conf *mc;
	struct proxy_loc_conf *lc;
	struct pt_upstream *u;
	struct pt_lb_ctx lb;
	int peer;                /* chosen peer, -1: none */
	struct pt_upconn *uc;
	struct pt_timer timer;   /* connect, send and read timeouts */
	unsigned tries;          /* peers tried */
	unsigned ntry;           /* entries used in try[] */
	struct proxy_try try[PROXY_MAX_TRIES];
	int64_t try_start;       /* monotonic ms */

	/* to the backend */
	struct pt_str head;
	size_t head_sent;
	char *ubuf;              /* request body bytes, chunk-framed */
	size_t ubuf_size, ubuf_pos, ubuf_last;
	int64_t body_sent;       /* body bytes written to this backend */
	unsigned body_chunked : 1;   /* framed in chunks to the backend */
	unsigned body_read_all : 1;  /* the client's body is all in ubuf */
	unsigned body_replay : 1;    /* ubuf holds the whole body */
	unsigned request_sent : 1;   /* head and body are written */
	unsigned sent_any : 1;       /* a byte of this request reached a
				      * backend */
	unsigned reuse_retry : 1;    /* the reused-connection retry is
				      * spent */
	unsigned body_eof : 1;       /* the client's body ended */
	unsigned buffering_body : 1; /* proxy_request_buffering: reading
				      * the whole body first */
	struct pt_str pend;      /* client body bytes not yet in ubuf */

	/* from the backend */
	char *hbuf;              /* the head, then slot 0 */
	size_t hbuf_last;
	struct pt_http_resp_scan scan;
	struct pt_http_resp_head rh;
	struct pt_http_header *rhdrs;
	unsigned got_bytes : 1;      /* a response byte arrived */
	unsigned head_done : 1;      /* passed on to the client */
	unsigned upstream_done : 1;  /* the body is complete */
	unsigned upstream_eof : 1;
	unsigned frame_client : 1;   /* we chunk-frame to the client */
	unsigned tunnel : 1;
	unsigned finished : 1;
	int64_t rest;            /* Content-Length bytes to come */
	struct pt_http_chunked chunked;
	struct proxy_slot *slots;
	unsigned nslots, next_slot;
	char tail[8];            /* "\r\n0\r\n\r\n" */
	struct pt_buf ltail_buf;
	struct pt_chain ltail;

	unsigned chunk_sent : 1;    /* a chunk went to the client */
	unsigned splicing : 1;      /* the body goes through a pipe */
	unsigned has_pipe : 1;
	int pipe[2];
	size_t pipe_bytes;          /* in the pipe, not yet written */

	/* tunnel: backend to client through hbuf, client to backend
	 * through tbuf */
	size_t bc_pos;
	char *tbuf;
	size_t tbuf_pos, tbuf_last;
	unsigned client_eof, backend_eof;
};

/* ---- proxy_io.c ------------------------------------------------------------ */

/* The response head was passed on: stream the body. */
void pt_proxy_body_start(struct proxy_ctx *x);
/* Move response body bytes as the sockets allow. */
void pt_proxy_body_pump(struct proxy_ctx *x);
/* 101: both ways, until either side closes or idles out. */
void pt_proxy_tunnel_start(struct proxy_ctx *x);
void pt_proxy_tunnel_pump(struct proxy_ctx *x);

/* proxy_splice.c: large bodies of known length, socket to socket. */
#define PROXY_PIPES_KEPT 64 /* per worker */
int pt_proxy_splice_ok(const struct proxy_ctx *x);
int pt_proxy_splice_pump(struct proxy_ctx *x);
void pt_proxy_splice_done(struct proxy_ctx *x);
/* The request ends with an error (status, or close if the head went).*/
void pt_proxy_fail(struct proxy_ctx *x, int status);
/* The request is over for the backend side: release the connection. */
void pt_proxy_release(struct proxy_ctx *x, int keep);

/* ---- proxy_head.c -------------------------------------------------------- */

/* The request head for the backend, from r's pool. PT_OK/PT_ERROR. */
int pt_proxy_build_request(struct pt_http_request *r, struct pt_str *out,
			   int chunked_body);
/* Copy the backend's response head into r->out. PT_OK/PT_ERROR. */
int pt_proxy_copy_response(struct pt_http_request *r,
			   const struct pt_http_resp_head *h);

#endif
