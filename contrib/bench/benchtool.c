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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#define IO_TIMEOUT_SEC 10

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

static int send_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
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
        r = recv(fd, buf + have, sizeof buf - 1 - have, 0);
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
            ssize_t r = recv(fd, buf, sizeof buf, 0);
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
        ssize_t r = recv(fd, buf, sizeof buf, 0);
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
    int status, fd = dial(port);
    if (fd < 0)
        die("connect");
    if (send_get(fd, path) < 0)
        die("send");
    status = read_response(fd, &body);
    if (status < 0)
        die("read response");
    printf("%d %ld\n", status, body);
    close(fd);
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
        fds[i] = dial(port);
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
        close(fds[i]);
    free(fds);
    return 0;
}

static void usage(void)
{
    fputs("usage: benchtool freeport [LO HI]\n"
          "       benchtool waitport PORT TIMEOUT_MS\n"
          "       benchtool get PORT PATH\n"
          "       benchtool idle PORT PATH N\n", stderr);
    exit(2);
}

int main(int argc, char **argv)
{
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
    usage();
    return 2;
}
