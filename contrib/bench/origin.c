/*
 * origin.c -- the origin (backend) server of the proxy cases of
 * contrib/bench/run.
 *
 *   origin PORT [STATFILE]
 *       Listen on 127.0.0.1:PORT and answer, from memory:
 *           GET /100b  -> 200, 100-byte body
 *           GET /16k   -> 200, 16384-byte body
 *           GET /1m    -> 200, 1048576-byte body
 *           anything else -> 404 with an empty body
 *       every response framed by Content-Length.  Runs until killed
 *       (SIGTERM).  With STATFILE, that file always holds the number of
 *       connections accepted so far as one text line (a shared mapping,
 *       rewritten per accept, not per request): the bench reads it around
 *       a run to see whether the proxy reused its upstream connections.
 *
 * Design: one thread, one level-triggered epoll loop, non-blocking
 * sockets, HTTP/1.1 keep-alive (HTTP/1.0 and "Connection: close" close
 * after the response).  It must cost as little CPU per request as
 * possible so that it is never the bottleneck of the proxy being
 * measured, hence:
 *   - each response (headers + body) is built once at start and sent with
 *     plain send() from that one buffer; nothing is allocated per request;
 *   - one recv() per readable event (level-triggered: if more is pending,
 *     epoll reports it again), no extra EAGAIN round trip;
 *   - epoll interest changes only when a response does not fit into the
 *     socket buffer (the 1 MiB one): then the connection waits for
 *     EPOLLOUT and stops reading, which is the backpressure.
 * Invariant: a connection has at most one response in flight (c->out);
 * pipelined requests stay in c->in until it is fully sent.
 *
 * Request parsing is just enough for proxies and benchmark clients: the
 * request line and the Connection header; requests with a body are
 * answered 400 and closed (no proxy sends one in these cases).
 * Compiled by `run` into its work dir; plain C99 + Linux epoll.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define ORIGIN_INBUF 8192     /* one request's headers must fit */
#define ORIGIN_EVENTS 256

struct origin_resp {
    const char *path;
    size_t body;               /* body bytes */
    char *data;                /* headers + body */
    size_t len;
};

struct origin_conn {
    int fd;
    int writing;               /* waiting for EPOLLOUT */
    int close_after;           /* close once c->out is sent */
    const char *out;           /* response being sent, or NULL */
    size_t outlen, off;
    size_t inlen;
    char in[ORIGIN_INBUF];
};

static struct origin_resp origin_resps[] = {
    { "/100b", 100, NULL, 0 },
    { "/16k", 16384, NULL, 0 },
    { "/1m", 1048576, NULL, 0 },
};
#define ORIGIN_NRESP (sizeof origin_resps / sizeof origin_resps[0])

static const char origin_404[] =
    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
static const char origin_400[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
    "Connection: close\r\n\r\n";

#define ORIGIN_STATLEN 21     /* 20 digits + newline */

static int origin_ep = -1;
static struct origin_conn **origin_conns;   /* indexed by fd */
static long origin_maxfd;
static char *origin_stat;                   /* mapped STATFILE, or NULL */
static unsigned long origin_accepted;

static void origin_die(const char *what)
{
    fprintf(stderr, "origin: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* Build every response once: headers and body in one buffer. */
static void origin_build(void)
{
    for (size_t i = 0; i < ORIGIN_NRESP; i++) {
        struct origin_resp *r = &origin_resps[i];
        char hdr[256];
        int n = snprintf(hdr, sizeof hdr,
                         "HTTP/1.1 200 OK\r\n"
                         "Content-Type: application/octet-stream\r\n"
                         "Content-Length: %zu\r\n\r\n", r->body);
        if (n < 0 || (size_t)n >= sizeof hdr) {
            fputs("origin: header too long\n", stderr);
            exit(1);
        }
        r->len = (size_t)n + r->body;
        r->data = malloc(r->len);
        if (r->data == NULL)
            origin_die("malloc");
        memcpy(r->data, hdr, (size_t)n);
        memset(r->data + n, 'x', r->body);
    }
}

/* Raise the open-files limit to the hard limit; the fd table is sized
 * by it. */
static void origin_limits(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        origin_die("getrlimit");
    rl.rlim_cur = rl.rlim_max;
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > 1048576)
        rl.rlim_cur = 1048576;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
        origin_die("setrlimit");
    origin_maxfd = (long)rl.rlim_cur;
    origin_conns = calloc((size_t)origin_maxfd, sizeof *origin_conns);
    if (origin_conns == NULL)
        origin_die("calloc");
}

static void origin_stat_open(const char *path)
{
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        origin_die(path);
    if (ftruncate(fd, ORIGIN_STATLEN) < 0)
        origin_die("ftruncate");
    origin_stat = mmap(NULL, ORIGIN_STATLEN, PROT_READ | PROT_WRITE,
                       MAP_SHARED, fd, 0);
    if (origin_stat == MAP_FAILED)
        origin_die("mmap");
    close(fd);
}

/* Fixed width, so a reader never sees a shorter number with stale digits
 * behind it. */
static void origin_stat_update(void)
{
    char line[ORIGIN_STATLEN + 1];
    if (origin_stat == NULL)
        return;
    snprintf(line, sizeof line, "%20lu\n", origin_accepted);
    memcpy(origin_stat, line, ORIGIN_STATLEN);
}

static int origin_listen(int port)
{
    struct sockaddr_in sa;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        origin_die("socket");
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
        origin_die("SO_REUSEADDR");
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0)
        origin_die("bind");
    if (listen(fd, 4096) < 0)
        origin_die("listen");
    return fd;
}

static void origin_close(struct origin_conn *c)
{
    origin_conns[c->fd] = NULL;
    close(c->fd);              /* also removes it from the epoll set */
    free(c);
}

static int origin_interest(struct origin_conn *c, int writing)
{
    struct epoll_event ev;
    if (c->writing == writing)
        return 0;
    ev.events = writing ? EPOLLOUT : EPOLLIN;
    ev.data.fd = c->fd;
    if (epoll_ctl(origin_ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
        return -1;
    c->writing = writing;
    return 0;
}

/* Send what is left of c->out.  1: all sent, 0: would block, -1: error. */
static int origin_flush(struct origin_conn *c)
{
    while (c->off < c->outlen) {
        ssize_t w = send(c->fd, c->out + c->off, c->outlen - c->off,
                         MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : -1;
        }
        c->off += (size_t)w;
    }
    c->out = NULL;
    return 1;
}

/* Does the header block [p, end) say "Connection: close" (or, for
 * HTTP/1.0, not "keep-alive")?  Also flags requests with a body. */
static void origin_headers(struct origin_conn *c, const char *p,
                           const char *end, int http10, int *has_body)
{
    int keep = !http10;
    for (;;) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            break;
        size_t n = (size_t)(eol - p);
        if (n > 11 && strncasecmp(p, "Connection:", 11) == 0) {
            char v[64];
            size_t vl = n - 11 < sizeof v - 1 ? n - 11 : sizeof v - 1;
            memcpy(v, p + 11, vl);
            v[vl] = '\0';
            if (strcasestr(v, "close") != NULL)
                keep = 0;
            else if (strcasestr(v, "keep-alive") != NULL)
                keep = 1;
        } else if ((n > 15 && strncasecmp(p, "Content-Length:", 15) == 0 &&
                    strtol(p + 15, NULL, 10) != 0) ||
                   (n > 18 &&
                    strncasecmp(p, "Transfer-Encoding:", 18) == 0)) {
            *has_body = 1;
        }
        p = eol + 1;
    }
    c->close_after = !keep;
}

/* Take one complete request off c->in and make its response current.
 * 1: a response was queued, 0: no complete request yet. */
static int origin_request(struct origin_conn *c)
{
    char *eoh, *sp1, *sp2;
    size_t used, plen;
    int has_body = 0;

    eoh = memmem(c->in, c->inlen, "\r\n\r\n", 4);
    if (eoh == NULL) {
        if (c->inlen == sizeof c->in) {      /* headers too large */
            c->out = origin_400;
            c->outlen = sizeof origin_400 - 1;
            c->off = 0;
            c->close_after = 1;
            return 1;
        }
        return 0;
    }
    used = (size_t)(eoh - c->in) + 4;
    c->out = origin_404;
    c->outlen = sizeof origin_404 - 1;
    sp1 = memchr(c->in, ' ', used);
    sp2 = sp1 ? memchr(sp1 + 1, ' ', used - (size_t)(sp1 + 1 - c->in)) : NULL;
    if (sp2 != NULL) {
        plen = (size_t)(sp2 - sp1 - 1);
        origin_headers(c, sp2, eoh + 2, strncmp(sp2 + 1, "HTTP/1.0", 8) == 0,
                       &has_body);
        for (size_t i = 0; i < ORIGIN_NRESP; i++) {
            if (strlen(origin_resps[i].path) == plen &&
                memcmp(origin_resps[i].path, sp1 + 1, plen) == 0) {
                c->out = origin_resps[i].data;
                c->outlen = origin_resps[i].len;
                break;
            }
        }
    }
    if (sp2 == NULL || has_body) {
        c->out = origin_400;
        c->outlen = sizeof origin_400 - 1;
        c->close_after = 1;
    }
    c->off = 0;
    memmove(c->in, c->in + used, c->inlen - used);
    c->inlen -= used;
    return 1;
}

/* Answer every complete request in c->in until one would block.
 * Returns -1 when the connection must be closed. */
static int origin_serve(struct origin_conn *c)
{
    for (;;) {
        int r;
        if (c->out == NULL && !origin_request(c))
            return origin_interest(c, 0);
        r = origin_flush(c);
        if (r < 0)
            return -1;
        if (r == 0)
            return origin_interest(c, 1);
        if (c->close_after)
            return -1;
    }
}

static void origin_readable(struct origin_conn *c)
{
    ssize_t r = recv(c->fd, c->in + c->inlen, sizeof c->in - c->inlen, 0);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r <= 0) {
        origin_close(c);
        return;
    }
    c->inlen += (size_t)r;
    if (origin_serve(c) < 0)
        origin_close(c);
}

static void origin_accept(int lfd)
{
    for (;;) {
        struct epoll_event ev;
        struct origin_conn *c;
        int one = 1;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fprintf(stderr, "origin: accept: %s\n", strerror(errno));
            return;
        }
        if (fd >= origin_maxfd || (c = malloc(sizeof *c)) == NULL) {
            fprintf(stderr, "origin: dropping connection (fd %d)\n", fd);
            close(fd);
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->fd = fd;
        c->writing = 0;
        c->close_after = 0;
        c->out = NULL;
        c->outlen = c->off = c->inlen = 0;
        ev.events = EPOLLIN;
        ev.data.fd = fd;
        if (epoll_ctl(origin_ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            fprintf(stderr, "origin: epoll_ctl: %s\n", strerror(errno));
            close(fd);
            free(c);
            continue;
        }
        origin_conns[fd] = c;
        origin_accepted++;
        origin_stat_update();
    }
}

int main(int argc, char **argv)
{
    struct epoll_event ev, evs[ORIGIN_EVENTS];
    int port, lfd;

    if (argc < 2 || argc > 3 || (port = atoi(argv[1])) <= 0 || port > 65535) {
        fputs("usage: origin PORT [STATFILE]\n", stderr);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3)
        origin_stat_open(argv[2]);
    origin_stat_update();
    origin_build();
    origin_limits();
    lfd = origin_listen(port);
    origin_ep = epoll_create1(EPOLL_CLOEXEC);
    if (origin_ep < 0)
        origin_die("epoll_create1");
    ev.events = EPOLLIN;
    ev.data.fd = lfd;
    if (epoll_ctl(origin_ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
        origin_die("epoll_ctl");

    for (;;) {
        int n = epoll_wait(origin_ep, evs, ORIGIN_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            origin_die("epoll_wait");
        }
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            struct origin_conn *c;
            if (fd == lfd) {
                origin_accept(lfd);
                continue;
            }
            c = origin_conns[fd];
            if (c == NULL)      /* closed earlier in this batch */
                continue;
            if (c->writing) {
                if (origin_serve(c) < 0)
                    origin_close(c);
            } else {
                origin_readable(c);
            }
        }
    }
}
