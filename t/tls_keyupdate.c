/*
 * tls_keyupdate.c: a TLS 1.3 client for t/87-tls-review.t that makes the
 * server's SSL_read() need to write: it asks for key updates (each
 * answered by one from the server) without reading, until the server's
 * socket is full, then sends a request and reads. A server that waits
 * for readability after an SSL_read() that wanted to write never
 * answers: its socket becomes writable, not readable.
 *
 * A unix socket, because its buffers do not grow: over TCP on loopback
 * both sides' buffers autotune to megabytes.
 *
 * The hang needs the request to wait inside the server's TLS buffer
 * (read ahead) while the socket holds nothing more: then the socket's
 * turning writable is the only event to come. So the records are made
 * in memory BIOs and the client chooses when bytes go and come: key
 * updates until the server stops reading; then, in one write, more key
 * updates than its socket can take answers to, and the request; one
 * drain of its answers (it reads all of that burst, answers until full
 * again, the request still buffered); then it reads, and waits 10 s.
 *
 * Usage: tls_keyupdate SOCKET_PATH SNI. Prints the status line it got,
 * exits 0 when the response came, 1 when it did not, 2 on a failure of
 * its own. Perl's Net::SSLeay has no SSL_key_update(), hence C. OpenSSL
 * refuses more than 32 key updates in a row without application data, so
 * each 16 go with an empty line, which a server drops between requests
 * (RFC 9112 section 2.2).
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/sockios.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

static double
now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int fd;
static SSL *ssl;
static BIO *rmem, *wmem;

/* Send what the session wrote into wmem, waiting 2 s at most. */
static int
flush(void)
{
	static char buf[1 << 16];
	int n;

	while ((n = BIO_read(wmem, buf, sizeof(buf))) > 0) {
		for (int off = 0; off < n;) {
			struct pollfd p = {fd, POLLOUT, 0};
			ssize_t w = send(fd, buf + off, (size_t)(n - off),
					 MSG_NOSIGNAL);
			if (w > 0)
				off += (int)w;
			else if (w < 0 && errno != EAGAIN)
				return -1;
			else if (poll(&p, 1, 2000) <= 0)
				return -1;
		}
	}
	return 0;
}

/* Sixteen key updates asking for the server's, and an empty line. */
static int
key_updates(void)
{
	for (int k = 0; k < 16; k++)
		if (SSL_key_update(ssl, SSL_KEY_UPDATE_REQUESTED) != 1 ||
		    SSL_do_handshake(ssl) != 1)
			return -1;
	return SSL_write(ssl, "\r\n", 2) == 2 ? 0 : -1;
}

static int
ioctl_int(unsigned long req)
{
	int v = -1;

	return ioctl(fd, req, &v) == 0 ? v : -1;
}

/* Wait (ms at most) until the server has read all we sent. */
static int
taken(int ms)
{
	for (int w = 0; w < ms / 10; w++) {
		if (ioctl_int(SIOCOUTQ) == 0)
			return 1;
		(void)poll(NULL, 0, 10);
	}
	return 0;
}

/* Take the bytes the socket holds (at most max) into the session: 0, 1
 * at the end of the stream, -1 on an error. */
static int
take_in(int max)
{
	static char buf[1 << 16];

	while (max > 0) {
		ssize_t n = recv(fd, buf,
				 (size_t)(max < (int)sizeof(buf)
						  ? max
						  : (int)sizeof(buf)),
				 0);
		if (n < 0 && errno != EAGAIN)
			return -1;
		if (n == 0)
			return 1; /* the end: what came before still counts */
		if (n < 0)
			break;
		if (BIO_write(rmem, buf, (int)n) != (int)n)
			return -1;
		max -= (int)n;
	}
	return 0;
}

/* Read on until a response head; its status line into status. */
static int
response(char *status, size_t cap, double secs)
{
	static char app[1 << 16];
	size_t got = 0;
	double end = now() + secs;

	app[0] = '\0';
	while (now() < end) {
		struct pollfd p = {fd, POLLIN, 0};
		int n, in = take_in(1 << 20);

		if (in < 0)
			return -1;
		while ((n = SSL_read(ssl, app + got,
				     (int)(sizeof(app) - 1 - got))) > 0) {
			got += (size_t)n;
			app[got] = '\0';
			if (got > sizeof(app) / 2)
				got = 0; /* only a head is looked for */
		}
		const char *h = strstr(app, "HTTP/1.1 ");
		if (h != NULL && strstr(h, "\r\n\r\n") != NULL) {
			snprintf(status, cap, "%.*s", (int)strcspn(h, "\r"), h);
			return 0;
		}
		if (SSL_get_error(ssl, n) != SSL_ERROR_WANT_READ) {
			fprintf(stderr, "tls_keyupdate: SSL_read: %d %s\n",
				SSL_get_error(ssl, n),
				ERR_reason_error_string(ERR_peek_error()));
			return -1;
		}
		if (in > 0)
			return 1;
		(void)poll(&p, 1, 100);
	}
	return 1;
}

static const char first[] = "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n";
static const char second[] = "GET /second HTTP/1.1\r\nHost: a.test\r\n"
			     "Connection: close\r\n\r\n";

int
main(int argc, char **argv)
{
	struct sockaddr_un sun;
	char status[256] = "";
	SSL_CTX *ctx;
	int stopped = 0, rc, last = -1;

	if (argc != 3 || strlen(argv[1]) >= sizeof(sun.sun_path))
		return 2;
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	memcpy(sun.sun_path, argv[1], strlen(argv[1]));
	if (fd < 0 || connect(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0)
		return 2;
	ctx = SSL_CTX_new(TLS_client_method());
	rmem = BIO_new(BIO_s_mem());
	wmem = BIO_new(BIO_s_mem());
	if (ctx == NULL || rmem == NULL || wmem == NULL ||
	    SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION) != 1)
		return 2;
	ssl = SSL_new(ctx);
	if (ssl == NULL || SSL_set_tlsext_host_name(ssl, argv[2]) != 1)
		return 2;
	SSL_set_bio(ssl, rmem, wmem);
	BIO_set_mem_eof_return(rmem, -1); /* empty: "retry", not the end */
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
	SSL_set_connect_state(ssl);
	for (double end = now() + 5; (rc = SSL_do_handshake(ssl)) != 1;) {
		struct pollfd p = {fd, POLLIN, 0};
		if (SSL_get_error(ssl, rc) != SSL_ERROR_WANT_READ ||
		    flush() != 0 || now() > end)
			return 2;
		(void)poll(&p, 1, 100);
		if (take_in(1 << 20) < 0)
			return 2;
	}
	/* a first request makes the connection an idle keep-alive one */
	if (SSL_write(ssl, first, sizeof(first) - 1) != sizeof(first) - 1 ||
	    flush() != 0 || response(status, sizeof(status), 5) != 0)
		return 2;
	/* key updates until the server stops reading (its socket is full of
	 * answers we do not read) */
	for (int i = 0; i < 4000 && !stopped; i++) {
		if (key_updates() != 0 || flush() != 0)
			return 2;
		stopped = !taken(500);
	}
	if (!stopped)
		return 2;
	/* one burst that its read-ahead takes whole: more key updates than
	 * its socket can take answers to, then the request */
	for (int i = 0; i < 30; i++)
		if (key_updates() != 0)
			return 2;
	if (SSL_write(ssl, second, sizeof(second) - 1) != sizeof(second) - 1 ||
	    flush() != 0)
		return 2;
	/* one drain: the server reads the burst and fills its socket again */
	if (take_in(ioctl_int(SIOCINQ)) < 0 || !taken(2000))
		return 2;
	for (int w = 0; w < 200; w++) { /* until it stops writing */
		int q = ioctl_int(SIOCINQ);
		if (q == last)
			break;
		last = q;
		(void)poll(NULL, 0, 20);
	}
	fprintf(stderr,
		"tls_keyupdate: the server stopped reading; %d bytes "
		"of its answers wait\n",
		last);
	rc = response(status, sizeof(status), 10);
	printf("%s\n", rc == 0 ? status : "no response");
	return rc;
}
