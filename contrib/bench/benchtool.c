/*
 * benchtool.c -- small client-side helper for contrib/bench/run.
 *
 * Compiled on the fly by `run` into its temporary work dir (never into the
 * source tree).  Plain C99 + POSIX, no dependencies.
 *
 *   benchtool freeport [LO HI]
 *       Print a TCP port in [LO, HI) that can currently be bound on
 *       127.0.0.1 (default 20000..32000, i.e. below the usual ephemeral
 *       range, so client sockets of wrk never collide with it).
 *
 *   benchtool waitport PORT TIMEOUT_MS
 *       Poll until something accepts TCP connections on 127.0.0.1:PORT.
 *       Exit 0 when it does, 1 on timeout.
 *
 *   benchtool get PORT PATH
 *       One keep-alive "GET PATH HTTP/1.1" to 127.0.0.1:PORT; print
 *       "STATUS BODY_BYTES" and exit 0 if a complete response was read.
 *
 *   benchtool idle PORT PATH N
 *       Open N connections one after the other, send one complete GET on
 *       each, read the full response (must be 200 with a known length),
 *       and keep every connection open and idle.  Then print "ready N" on
 *       stdout and serve commands read from stdin, one per line:
 *           check   -> print "open M": how many of the N connections the
 *                      server has NOT closed (no EOF/error pending)
 *       EOF on stdin (or SIGTERM) closes everything and exits 0.
 *       Errors are reported on stderr and exit status 1.
 *
 *   benchtool [TLS OPTIONS] handshake PORT PATH CONNS SECONDS
 *       Full TLS handshakes: keep CONNS connections in flight for SECONDS;
 *       each one connects, makes a full handshake (no session cache, no
 *       tickets: never resumed), sends one "GET PATH" with "Connection:
 *       close", reads the response and waits for the server to close (so
 *       the server, not the client, holds the TIME_WAIT and does its whole
 *       close path), then a new connection takes its place.  After SECONDS
 *       no new connection starts and the ones in flight finish (bounded).
 *       Prints one line:
 *           done N secs S rate R p50_us A p99_us B errors E non2xx M
 *       N = completed connections (handshake + 200 + close), R = N / S,
 *       p50/p99 = connect-to-close time of a connection, E = connections
 *       that failed (the first few reasons go to stderr).
 *
 * TLS OPTIONS (only when compiled with -DBENCHTOOL_TLS, linked with
 * -lssl -lcrypto; `run` does so when a TLS case is selected):
 *   --tls                `get` and `idle` speak TLS (blocking handshake
 *                        after connect; `get` then also prints the
 *                        negotiated protocol and cipher)
 *   --tls-version V      1.2 or 1.3: the only version offered
 *                        (default: 1.2 and 1.3, i.e. TLS 1.3)
 *   --tls-ciphers LIST   OpenSSL cipher list for TLS <= 1.2
 * The client never verifies the certificate chain (the signature of the
 * handshake is still checked, as the protocol requires), never caches a
 * session and never asks for a ticket; it sends SNI "localhost" and offers
 * ALPN "http/1.1", like a browser would (minus h2).
 *
 * Responses are parsed just enough for benchmarking: status line,
 * Content-Length, or (naively) "Transfer-Encoding: chunked" terminated by
 * the zero-length chunk.  Bodies are counted, not stored.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifdef BENCHTOOL_TLS
#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/epoll.h>
#endif

#define IO_TIMEOUT_SEC 10

/*
 * TLS for `get` and `idle`: with --tls every socket that dial() returns is
 * wrapped in a TLS session (blocking handshake), kept in tls_by_fd[fd];
 * io_send()/io_recv() go through it.  Without BENCHTOOL_TLS they are
 * plain send()/recv().
 */
#ifdef BENCHTOOL_TLS
static int use_tls;
static SSL_CTX *tls_ctx;
static SSL **tls_by_fd;
static int tls_nfd;
static int tls_version;          /* 0 (1.2 and 1.3), 12 or 13 */
static const char *tls_ciphers;
#endif

static void die(const char *what)
{
    fprintf(stderr, "benchtool: %s: %s\n", what, strerror(errno));
    exit(1);
}

static struct sockaddr_in loopback(int port)
{
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    return sa;
}

/* Connected blocking socket with send/receive timeouts, or -1. */
static int dial(int port)
{
    struct sockaddr_in sa = loopback(port);
    struct timeval tv = { IO_TIMEOUT_SEC, 0 };
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

#ifdef BENCHTOOL_TLS
static SSL *tls_of(int fd)
{
    return (fd >= 0 && fd < tls_nfd) ? tls_by_fd[fd] : NULL;
}

/* SSL_read/SSL_write result as a recv/send result: -1 with errno. */
static ssize_t tls_io_result(SSL *ssl, int r)
{
    if (r > 0)
        return r;
    switch (SSL_get_error(ssl, r)) {
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EAGAIN;          /* SO_RCVTIMEO/SO_SNDTIMEO expired */
        return -1;
    case SSL_ERROR_SYSCALL:
        if (errno == 0)
            return 0;            /* EOF without close_notify */
        return -1;
    default:
        errno = EPROTO;
        return -1;
    }
}
#endif

static ssize_t io_recv(int fd, char *buf, size_t n)
{
#ifdef BENCHTOOL_TLS
    SSL *ssl = tls_of(fd);
    if (ssl != NULL) {
        errno = 0;
        return tls_io_result(ssl, SSL_read(ssl, buf, n > INT32_MAX ? INT32_MAX : (int)n));
    }
#endif
    return recv(fd, buf, n, 0);
}

static ssize_t io_send(int fd, const char *p, size_t n)
{
#ifdef BENCHTOOL_TLS
    SSL *ssl = tls_of(fd);
    if (ssl != NULL) {
        errno = 0;
        return tls_io_result(ssl, SSL_write(ssl, p, n > INT32_MAX ? INT32_MAX : (int)n));
    }
#endif
    return send(fd, p, n, MSG_NOSIGNAL);
}

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = io_send(fd, p, n);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_get(int fd, const char *path)
{
    char req[2048];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                     "User-Agent: portier-benchtool\r\n\r\n", path);
    if (n < 0 || (size_t)n >= sizeof req) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return send_all(fd, req, (size_t)n);
}

/*
 * Read one complete HTTP/1.x response.  Returns the status code and stores
 * the body size in *body; -1 on error (errno set, EPROTO for bad/unframed
 * responses).  A keep-alive response must be framed by Content-Length or
 * chunked encoding; anything else is rejected.
 */
static int read_response(int fd, long *body)
{
    static char buf[65536];
    size_t have = 0, hlen = 0;
    int status = -1;
    long clen = -1;
    int chunked = 0;
    char *eoh = NULL;

    /* 1. headers (must fit into buf) */
    while (eoh == NULL) {
        ssize_t r;
        if (have == sizeof buf - 1) {
            errno = EPROTO;
            return -1;
        }
        r = io_recv(fd, buf + have, sizeof buf - 1 - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = ECONNRESET;
            return -1;
        }
        have += (size_t)r;
        buf[have] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
    }
    hlen = (size_t)(eoh - buf) + 4;

    if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1) {
        errno = EPROTO;
        return -1;
    }
    for (char *line = strstr(buf, "\r\n"); line && line < eoh;
         line = strstr(line + 2, "\r\n")) {
        char *h = line + 2;
        if (strncasecmp(h, "Content-Length:", 15) == 0)
            clen = strtol(h + 15, NULL, 10);
        else if (strncasecmp(h, "Transfer-Encoding:", 18) == 0 &&
                 strstr(h, "chunked") != NULL && strstr(h, "chunked") < eoh)
            chunked = 1;
    }

    /* 2. body: counted, not kept */
    if (chunked) {
        /* Naive: wait for the terminating zero-length chunk "0\r\n\r\n"
         * (at the start of the body or after a CRLF).  Good enough for the
         * small bodies used here; reported size includes chunk framing. */
        char tail[8] = "\r\n";   /* pretend a CRLF precedes the body */
        size_t tl = 2;
        long n = 0;
        size_t off = hlen;
        for (;;) {
            for (; off < have; off++) {
                n++;
                if (tl == sizeof tail - 1) {
                    memmove(tail, tail + 1, tl - 1);
                    tl--;
                }
                tail[tl++] = buf[off];
                tail[tl] = '\0';
                if (tl >= 7 && memcmp(tail + tl - 7, "\r\n0\r\n\r\n", 7) == 0) {
                    *body = n;
                    return status;
                }
            }
            ssize_t r = io_recv(fd, buf, sizeof buf);
            if (r < 0 && errno == EINTR)
                continue;
            if (r <= 0) {
                if (r == 0)
                    errno = ECONNRESET;
                return -1;
            }
            have = (size_t)r;
            off = 0;
        }
    }
    if (clen < 0) {
        errno = EPROTO;   /* close-delimited: not usable for keep-alive */
        return -1;
    }
    long got = (long)(have - hlen);
    while (got < clen) {
        ssize_t r = io_recv(fd, buf, sizeof buf);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r == 0)
                errno = ECONNRESET;
            return -1;
        }
        got += r;
    }
    if (got != clen) {   /* pipelining is never used, so this is garbage */
        errno = EPROTO;
        return -1;
    }
    *body = clen;
    return status;
}

/* ---------------------------------------------------------------------- */
/* TLS client side                                                        */
/* ---------------------------------------------------------------------- */
#ifdef BENCHTOOL_TLS
static void tls_die(const char *what)
{
    unsigned long e = ERR_get_error();
    fprintf(stderr, "benchtool: %s: %s\n", what,
            e ? ERR_reason_error_string(e) : "unknown TLS error");
    exit(1);
}

/* The one client context: no session cache, no tickets, no chain
 * verification; the version and cipher options applied. */
static void tls_init(void)
{
    static const unsigned char alpn[] = "\x08http/1.1";
    int lo = TLS1_2_VERSION, hi = TLS1_3_VERSION;

    if (tls_ctx != NULL)
        return;
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (tls_ctx == NULL)
        tls_die("SSL_CTX_new");
    if (tls_version == 12)
        hi = TLS1_2_VERSION;
    else if (tls_version == 13)
        lo = TLS1_3_VERSION;
    if (!SSL_CTX_set_min_proto_version(tls_ctx, lo) ||
        !SSL_CTX_set_max_proto_version(tls_ctx, hi))
        tls_die("TLS version");
    if (tls_ciphers != NULL && !SSL_CTX_set_cipher_list(tls_ctx, tls_ciphers))
        tls_die("--tls-ciphers");
    SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_options(tls_ctx, SSL_OP_NO_TICKET);
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    if (SSL_CTX_set_alpn_protos(tls_ctx, alpn, sizeof alpn - 1) != 0)
        tls_die("ALPN");
}

static SSL *tls_new(int fd)
{
    SSL *ssl = SSL_new(tls_ctx);
    if (ssl == NULL || !SSL_set_fd(ssl, fd) ||
        !SSL_set_tlsext_host_name(ssl, "localhost"))
        tls_die("SSL_new");
    return ssl;
}

/* Blocking handshake on a connected socket (timeouts from dial());
 * remembers the session in tls_by_fd[fd].  0 or -1. */
static int tls_wrap(int fd)
{
    SSL *ssl;
    if (fd >= tls_nfd) {
        int n = fd * 2 + 64;
        SSL **t = realloc(tls_by_fd, (size_t)n * sizeof *t);
        if (t == NULL)
            die("realloc");
        memset(t + tls_nfd, 0, (size_t)(n - tls_nfd) * sizeof *t);
        tls_by_fd = t;
        tls_nfd = n;
    }
    ssl = tls_new(fd);
    if (SSL_connect(ssl) != 1) {
        unsigned long e = ERR_get_error();
        fprintf(stderr, "benchtool: TLS handshake: %s\n",
                e ? ERR_reason_error_string(e) : strerror(errno));
        SSL_free(ssl);
        errno = EPROTO;
        return -1;
    }
    tls_by_fd[fd] = ssl;
    return 0;
}
#endif

/* dial() for the application commands: TLS with --tls. */
static int dial_app(int port)
{
    int fd = dial(port);
#ifdef BENCHTOOL_TLS
    if (fd >= 0 && use_tls && tls_wrap(fd) < 0) {
        close(fd);
        errno = EPROTO;
        return -1;
    }
#endif
    return fd;
}

static void close_app(int fd)
{
#ifdef BENCHTOOL_TLS
    SSL *ssl = tls_of(fd);
    if (ssl != NULL) {
        SSL_free(ssl);           /* no close_notify: like wrk */
        tls_by_fd[fd] = NULL;
    }
#endif
    close(fd);
}

static void raise_nofile(long want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        die("getrlimit");
    if ((long)rl.rlim_cur >= want)
        return;
    rl.rlim_cur = (rlim_t)want;
    if ((long)rl.rlim_max < want)
        rl.rlim_max = (rlim_t)want;          /* works as root */
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) {
        getrlimit(RLIMIT_NOFILE, &rl);
        rl.rlim_cur = rl.rlim_max;            /* best effort */
        setrlimit(RLIMIT_NOFILE, &rl);
        if ((long)rl.rlim_cur < want) {
            fprintf(stderr, "benchtool: open files limit %ld < %ld needed "
                    "(raise ulimit -n)\n", (long)rl.rlim_cur, want);
            exit(1);
        }
    }
}

static int cmd_freeport(int lo, int hi)
{
    srand((unsigned)(getpid() ^ time(NULL)));
    for (int i = 0; i < 1000; i++) {
        int port = lo + rand() % (hi - lo);
        struct sockaddr_in sa = loopback(port);
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        if (fd < 0)
            die("socket");
        /* no SO_REUSEADDR: also refuse ports with lingering TIME_WAITs */
        if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0) {
            close(fd);
            printf("%d\n", port);
            return 0;
        }
        close(fd);
    }
    fprintf(stderr, "benchtool: no free port in [%d, %d)\n", lo, hi);
    return 1;
}

static int cmd_waitport(int port, long timeout_ms)
{
    struct timespec ts = { 0, 20 * 1000 * 1000 };   /* 20 ms between tries */
    for (long waited = 0; waited <= timeout_ms; waited += 20) {
        int fd = dial(port);
        if (fd >= 0) {
            close(fd);
            return 0;
        }
        nanosleep(&ts, NULL);
    }
    return 1;
}

static int cmd_get(int port, const char *path)
{
    long body = 0;
    int status, fd = dial_app(port);
    if (fd < 0)
        die("connect");
    if (send_get(fd, path) < 0)
        die("send");
    status = read_response(fd, &body);
    if (status < 0)
        die("read response");
#ifdef BENCHTOOL_TLS
    if (use_tls) {
        SSL *ssl = tls_of(fd);
        printf("%d %ld %s %s\n", status, body, SSL_get_version(ssl),
               SSL_get_cipher_name(ssl));
    } else
#endif
        printf("%d %ld\n", status, body);
    close_app(fd);
    return 0;
}

static int cmd_idle(int port, const char *path, long n)
{
    int *fds = calloc((size_t)n, sizeof *fds);
    char line[64];

    if (fds == NULL)
        die("calloc");
    raise_nofile(n + 64);
    signal(SIGPIPE, SIG_IGN);

    for (long i = 0; i < n; i++) {
        long body;
        int status;
        fds[i] = dial_app(port);
        if (fds[i] < 0) {
            fprintf(stderr, "benchtool: connection %ld: connect: %s\n",
                    i + 1, strerror(errno));
            return 1;
        }
        if (send_get(fds[i], path) < 0 ||
            (status = read_response(fds[i], &body)) < 0) {
            fprintf(stderr, "benchtool: connection %ld: %s\n",
                    i + 1, strerror(errno));
            return 1;
        }
        if (status != 200) {
            fprintf(stderr, "benchtool: connection %ld: status %d\n",
                    i + 1, status);
            return 1;
        }
    }
    printf("ready %ld\n", n);
    fflush(stdout);

    while (fgets(line, sizeof line, stdin) != NULL) {
        if (strncmp(line, "check", 5) == 0) {
            long open_ = 0;
            for (long i = 0; i < n; i++) {
                struct pollfd p = { fds[i], POLLIN | POLLRDHUP, 0 };
                /* idle keep-alive conn: nothing to read, no hangup */
                if (poll(&p, 1, 0) == 0)
                    open_++;
            }
            printf("open %ld\n", open_);
            fflush(stdout);
        }
    }
    for (long i = 0; i < n; i++)
        close_app(fds[i]);
    free(fds);
    return 0;
}

#ifdef BENCHTOOL_TLS
static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

/*
 * `handshake`: a non-blocking client, one epoll loop, CONNS slots.  A slot
 * holds one connection going CONNECTING -> TLS (SSL_connect) -> SEND (the
 * request) -> READ (response, then EOF: the server closes after
 * "Connection: close").  When it ends, the slot starts a new connection
 * unless the run is over.  Invariant: a slot's fd is -1 or an open socket
 * registered in the epoll set with interest `events`.
 */
enum hs_state { HS_CONNECTING, HS_TLS, HS_SEND, HS_READ };

struct hs_conn {
    int fd;
    SSL *ssl;
    enum hs_state state;
    uint32_t events;
    double t0;
    int status;                  /* -1 until the status line is parsed */
    long clen, got;              /* Content-Length (-1: none), body bytes */
    size_t hlen;                 /* header bytes in hdr, until parsed */
    char hdr[4096];
};

struct hs_run {
    int ep, port, stopping;
    char req[2048];
    int reqlen;
    long done, errors, non2xx, inflight;
    uint32_t *lat;               /* connect-to-close, us, per success */
    size_t nlat, caplat;
};

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void hs_close(struct hs_run *r, struct hs_conn *c)
{
    if (c->ssl != NULL)
        SSL_free(c->ssl);
    close(c->fd);                /* also leaves the epoll set */
    c->ssl = NULL;
    c->fd = -1;
    r->inflight--;
}

static void hs_fail(struct hs_run *r, struct hs_conn *c, const char *what)
{
    unsigned long e = ERR_get_error();
    if (r->errors++ < 5)
        fprintf(stderr, "benchtool: handshake run: %s: %s\n", what,
                e ? ERR_reason_error_string(e) : errno ? strerror(errno) : "EOF");
    ERR_clear_error();
    if (c->fd >= 0)
        hs_close(r, c);
}

static int hs_want(struct hs_run *r, struct hs_conn *c, uint32_t ev)
{
    struct epoll_event e = { ev, { .ptr = c } };
    if (c->events == ev)
        return 0;
    c->events = ev;
    return epoll_ctl(r->ep, EPOLL_CTL_MOD, c->fd, &e);
}

static void hs_start(struct hs_run *r, struct hs_conn *c)
{
    struct sockaddr_in sa = loopback(r->port);
    struct epoll_event e = { EPOLLOUT, { .ptr = c } };
    int one = 1;

    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        hs_fail(r, c, "socket");
        return;
    }
    r->inflight++;
    c->ssl = NULL;
    c->t0 = now_s();
    c->state = HS_CONNECTING;
    c->status = -1;
    c->clen = -1;
    c->got = 0;
    c->hlen = 0;
    c->events = EPOLLOUT;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0 && errno != EINPROGRESS) {
        hs_fail(r, c, "connect");
        return;
    }
    if (epoll_ctl(r->ep, EPOLL_CTL_ADD, c->fd, &e) < 0)
        die("epoll_ctl");
}

/* Response bytes: headers collected until parsed, then only counted. */
static int hs_parse(struct hs_conn *c, const char *p, size_t n)
{
    char *eoh;
    size_t take;

    if (c->status >= 0) {
        c->got += (long)n;
        return 0;
    }
    take = sizeof c->hdr - 1 - c->hlen;
    if (take > n)
        take = n;
    memcpy(c->hdr + c->hlen, p, take);
    c->hlen += take;
    c->hdr[c->hlen] = '\0';
    eoh = strstr(c->hdr, "\r\n\r\n");
    if (eoh == NULL)
        return c->hlen == sizeof c->hdr - 1 ? -1 : 0;
    if (sscanf(c->hdr, "HTTP/%*d.%*d %d", &c->status) != 1)
        return -1;
    for (char *l = strstr(c->hdr, "\r\n"); l && l < eoh; l = strstr(l + 2, "\r\n"))
        if (strncasecmp(l + 2, "Content-Length:", 15) == 0)
            c->clen = strtol(l + 17, NULL, 10);
    /* body bytes: what followed the headers in this piece and before */
    c->got = (long)(c->hlen - (size_t)(eoh + 4 - c->hdr)) + (long)(n - take);
    return 0;
}

static void hs_finish(struct hs_run *r, struct hs_conn *c)
{
    double t = now_s() - c->t0;
    if (c->status < 0 || (c->clen >= 0 && c->got != c->clen)) {
        errno = EPROTO;
        hs_fail(r, c, "incomplete response before EOF");
        return;
    }
    if (c->status != 200) {
        r->non2xx++;
    } else {
        if (r->nlat == r->caplat) {
            size_t n = r->caplat ? r->caplat * 2 : 65536;
            uint32_t *l = realloc(r->lat, n * sizeof *l);
            if (l == NULL)
                die("realloc");
            r->lat = l;
            r->caplat = n;
        }
        r->lat[r->nlat++] = (uint32_t)(t * 1e6);
        r->done++;
    }
    hs_close(r, c);
}

/* Advance one connection as far as it goes without blocking. */
static void hs_step(struct hs_run *r, struct hs_conn *c)
{
    char buf[16384];
    int n = 0, err = 0;
    socklen_t len = sizeof err;

    for (;;) {
        errno = 0;
        switch (c->state) {
        case HS_CONNECTING:
            if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
                errno = err;
                hs_fail(r, c, "connect");
                return;
            }
            c->ssl = tls_new(c->fd);
            c->state = HS_TLS;
            continue;
        case HS_TLS:
            n = SSL_connect(c->ssl);
            if (n == 1) {
                c->state = HS_SEND;
                continue;
            }
            break;
        case HS_SEND:
            n = SSL_write(c->ssl, r->req, r->reqlen);
            if (n > 0) {
                c->state = HS_READ;
                continue;
            }
            break;
        case HS_READ:
            n = SSL_read(c->ssl, buf, sizeof buf);
            if (n > 0) {
                if (hs_parse(c, buf, (size_t)n) < 0) {
                    errno = EPROTO;
                    hs_fail(r, c, "bad response");
                    return;
                }
                continue;
            }
            break;
        }
        switch (SSL_get_error(c->ssl, n)) {
        case SSL_ERROR_WANT_READ:
            if (hs_want(r, c, EPOLLIN) < 0)
                die("epoll_ctl");
            return;
        case SSL_ERROR_WANT_WRITE:
            if (hs_want(r, c, EPOLLOUT) < 0)
                die("epoll_ctl");
            return;
        case SSL_ERROR_ZERO_RETURN:
            if (c->state == HS_READ) {
                hs_finish(r, c);
                return;
            }
            /* fall through */
        default:
            /* a reset after the complete response is the server closing */
            if (c->state == HS_READ && c->status >= 0 && c->clen >= 0 && c->got == c->clen) {
                ERR_clear_error();
                hs_finish(r, c);
                return;
            }
            hs_fail(r, c, c->state == HS_TLS ? "handshake" : c->state == HS_SEND ? "send" : "read");
            return;
        }
    }
}

static int cmd_handshake(int port, const char *path, int conns, double secs)
{
    struct hs_run r;
    struct hs_conn *cs = calloc((size_t)conns, sizeof *cs);
    struct epoll_event evs[256];
    double t0, end, last_sweep = 0, now;

    memset(&r, 0, sizeof r);
    if (cs == NULL)
        die("calloc");
    tls_init();
    SSL_CTX_set_options(tls_ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
    raise_nofile(conns + 64);
    signal(SIGPIPE, SIG_IGN);
    r.port = port;
    r.reqlen = snprintf(r.req, sizeof r.req,
                        "GET %s HTTP/1.1\r\nHost: localhost\r\n"
                        "User-Agent: portier-benchtool\r\nConnection: close\r\n\r\n", path);
    if (r.reqlen < 0 || (size_t)r.reqlen >= sizeof r.req) {
        errno = ENAMETOOLONG;
        die("request");
    }
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    if (r.ep < 0)
        die("epoll_create1");

    t0 = now_s();
    end = t0 + secs;
    for (int i = 0; i < conns; i++) {
        cs[i].fd = -1;
        hs_start(&r, &cs[i]);
    }
    for (;;) {
        int n = epoll_wait(r.ep, evs, 256, 100);
        if (n < 0 && errno != EINTR)
            die("epoll_wait");
        for (int i = 0; i < n; i++)
            hs_step(&r, evs[i].data.ptr);
        now = now_s();
        if (now >= end)
            r.stopping = 1;
        /* refill free slots; give up on connections stuck for too long */
        for (int i = 0; i < conns; i++) {
            if (cs[i].fd >= 0 && now - last_sweep >= 0.1 && now - cs[i].t0 > IO_TIMEOUT_SEC) {
                errno = ETIMEDOUT;
                hs_fail(&r, &cs[i], "timeout");
            }
            if (cs[i].fd < 0 && !r.stopping)
                hs_start(&r, &cs[i]);
        }
        if (now - last_sweep >= 0.1)
            last_sweep = now;
        if (r.stopping && r.inflight == 0)
            break;
        if (r.done == 0 && r.errors > 1000) {
            fprintf(stderr, "benchtool: handshake run: only errors, giving up\n");
            return 1;
        }
    }
    now = now_s();
    qsort(r.lat, r.nlat, sizeof *r.lat, cmp_u32);
    printf("done %ld secs %.3f rate %.1f p50_us %u p99_us %u errors %ld non2xx %ld\n",
           r.done, now - t0, (double)r.done / (now - t0),
           r.nlat ? r.lat[r.nlat / 2] : 0, r.nlat ? r.lat[(size_t)((double)r.nlat * 0.99)] : 0,
           r.errors, r.non2xx);
    free(r.lat);
    free(cs);
    close(r.ep);
    return 0;
}
#endif

static void usage(void)
{
    fputs("usage: benchtool freeport [LO HI]\n"
          "       benchtool waitport PORT TIMEOUT_MS\n"
          "       benchtool get PORT PATH\n"
          "       benchtool idle PORT PATH N\n"
          "       benchtool handshake PORT PATH CONNS SECONDS\n"
          "TLS options before the command: --tls, --tls-version 1.2|1.3,\n"
          "--tls-ciphers LIST (only in a build with -DBENCHTOOL_TLS)\n", stderr);
    exit(2);
}

/* TLS options before the command; returns how many argv items they took. */
static int parse_tls_options(int argc, char **argv)
{
    int i = 1;
    while (i < argc && strncmp(argv[i], "--tls", 5) == 0) {
#ifndef BENCHTOOL_TLS
        fprintf(stderr, "benchtool: %s: compiled without TLS (-DBENCHTOOL_TLS)\n", argv[i]);
        exit(2);
#else
        if (strcmp(argv[i], "--tls") == 0) {
            use_tls = 1;
            i++;
        } else if (strcmp(argv[i], "--tls-version") == 0 && i + 1 < argc) {
            tls_version = strcmp(argv[i + 1], "1.2") == 0 ? 12
                        : strcmp(argv[i + 1], "1.3") == 0 ? 13 : -1;
            if (tls_version < 0)
                usage();
            i += 2;
        } else if (strcmp(argv[i], "--tls-ciphers") == 0 && i + 1 < argc) {
            tls_ciphers = argv[i + 1];
            i += 2;
        } else {
            usage();
        }
#endif
    }
#ifdef BENCHTOOL_TLS
    if (use_tls)
        tls_init();
#endif
    return i - 1;
}

int main(int argc, char **argv)
{
    int skip = parse_tls_options(argc, argv);
    argc -= skip;
    argv += skip;
    if (argc < 2)
        usage();
    if (strcmp(argv[1], "freeport") == 0) {
        int lo = argc > 3 ? atoi(argv[2]) : 20000;
        int hi = argc > 3 ? atoi(argv[3]) : 32000;
        if (lo <= 0 || hi <= lo || hi > 65536)
            usage();
        return cmd_freeport(lo, hi);
    }
    if (strcmp(argv[1], "waitport") == 0 && argc == 4)
        return cmd_waitport(atoi(argv[2]), atol(argv[3]));
    if (strcmp(argv[1], "get") == 0 && argc == 4)
        return cmd_get(atoi(argv[2]), argv[3]);
    if (strcmp(argv[1], "idle") == 0 && argc == 5 && atol(argv[4]) > 0)
        return cmd_idle(atoi(argv[2]), argv[3], atol(argv[4]));
#ifdef BENCHTOOL_TLS
    if (strcmp(argv[1], "handshake") == 0 && argc == 6 && atoi(argv[4]) > 0 && atof(argv[5]) > 0)
        return cmd_handshake(atoi(argv[2]), argv[3], atoi(argv[4]), atof(argv[5]));
#endif
    usage();
    return 2;
}
