/*
 * listen.c: addresses and listening sockets.
 *
 * Listening sockets are created without FD_CLOEXEC: a binary upgrade
 * execs the new binary with them open, and lists them in the environment
 * variable PORTIER_INHERIT as "fd:address[#slot];..." (slot for the
 * per-worker sockets of `reuseport`). The new master takes the ones that
 * match its config and closes the rest.
 */
#include "core.h"
#include "cycle.h"
#include "listen.h"
#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <sys/stat.h>
#include <unistd.h>

int
pt_addr_parse(const char *s, struct pt_sockaddr *a, char *text,
	      size_t textlen, char *err, size_t errlen)
{
	char host[64];
	const char *port;
	uint64_t p;
	size_t hlen;

	memset(a, 0, sizeof(*a));
	if (strncmp(s, "unix:", 5) == 0) {
		size_t plen = strlen(s + 5);
		if (plen == 0 || s[5] != '/' ||
		    plen >= sizeof(a->u.sun.sun_path)) {
			snprintf(err, errlen,
				 "unix socket path must be absolute and "
				 "shorter than %zu bytes",
				 sizeof(a->u.sun.sun_path));
			return PT_ERROR;
		}
		a->u.sun.sun_family = AF_UNIX;
		memcpy(a->u.sun.sun_path, s + 5, plen + 1);
		a->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) +
				     plen + 1);
		snprintf(text, textlen, "%s", s);
		return PT_OK;
	}
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL || close[1] != ':') {
			snprintf(err, errlen, "invalid address \"%s\"", s);
			return PT_ERROR;
		}
		hlen = (size_t)(close - s - 1);
		port = close + 2;
		if (hlen >= sizeof(host))
			goto bad;
		memcpy(host, s + 1, hlen);
		host[hlen] = '\0';
		a->u.sin6.sin6_family = AF_INET6;
		if (inet_pton(AF_INET6, host, &a->u.sin6.sin6_addr) != 1)
			goto bad;
		a->len = sizeof(a->u.sin6);
	} else {
		const char *colon = strrchr(s, ':');
		if (colon == NULL) {
			port = s;
			snprintf(host, sizeof(host), "0.0.0.0");
		} else {
			hlen = (size_t)(colon - s);
			if (hlen >= sizeof(host))
				goto bad;
			memcpy(host, s, hlen);
			host[hlen] = '\0';
			port = colon + 1;
			if (strcmp(host, "*") == 0)
				snprintf(host, sizeof(host), "0.0.0.0");
		}
		a->u.sin.sin_family = AF_INET;
		if (inet_pton(AF_INET, host, &a->u.sin.sin_addr) != 1)
			goto bad;
		a->len = sizeof(a->u.sin);
	}
	if (pt_parse_uint(port, strlen(port), 65535, &p) != PT_OK || p == 0) {
		snprintf(err, errlen, "invalid port in \"%s\"", s);
		return PT_ERROR;
	}
	if (a->u.sa.sa_family == AF_INET)
		a->u.sin.sin_port = htons((uint16_t)p);
	else
		a->u.sin6.sin6_port = htons((uint16_t)p);
	pt_addr_text(&a->u.sa, a->len, text, textlen);
	return PT_OK;
bad:
	snprintf(err, errlen,
		 "invalid address \"%s\" (expected IPv4 \"a.b.c.d:port\", "
		 "IPv6 \"[addr]:port\" or \"unix:/path\")",
		 s);
	return PT_ERROR;
}

size_t
pt_addr_ip(const struct sockaddr *sa, char *buf, size_t buflen)
{
	const void *src;

	switch (sa->sa_family) {
	case AF_INET:
		src = &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
		break;
	case AF_INET6:
		src = &((const struct sockaddr_in6 *)(const void *)sa)
			       ->sin6_addr;
		break;
	default:
		return (size_t)snprintf(buf, buflen, "unix:");
	}
	if (inet_ntop(sa->sa_family, src, buf, (socklen_t)buflen) == NULL)
		return (size_t)snprintf(buf, buflen, "?");
	return strlen(buf);
}

unsigned
pt_addr_port(const struct sockaddr *sa)
{
	if (sa->sa_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)(const void *)sa)
				     ->sin_port);
	if (sa->sa_family == AF_INET6)
		return ntohs(((const struct sockaddr_in6 *)(const void *)sa)
				     ->sin6_port);
	return 0;
}

void
pt_addr_text(const struct sockaddr *sa, socklen_t len, char *buf,
	     size_t buflen)
{
	char ip[INET6_ADDRSTRLEN];

	if (sa->sa_family == AF_UNIX) {
		const struct sockaddr_un *sun = (const void *)sa;
		size_t plen = len > offsetof(struct sockaddr_un, sun_path)
				      ? len - offsetof(struct sockaddr_un,
						       sun_path)
				      : 0;
		snprintf(buf, buflen, "unix:%.*s",
			 (int)strnlen(sun->sun_path, plen), sun->sun_path);
		return;
	}
	pt_addr_ip(sa, ip, sizeof(ip));
	snprintf(buf, buflen, sa->sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
		 ip, pt_addr_port(sa));
}

int
pt_addr_is_wildcard(const struct pt_sockaddr *a)
{
	if (a->u.sa.sa_family == AF_INET)
		return a->u.sin.sin_addr.s_addr == htonl(INADDR_ANY);
	if (a->u.sa.sa_family == AF_INET6)
		return IN6_IS_ADDR_UNSPECIFIED(&a->u.sin6.sin6_addr);
	return 0;
}

int
pt_addr_equal(const struct pt_sockaddr *a, const struct pt_sockaddr *b)
{
	if (a->u.sa.sa_family != b->u.sa.sa_family)
		return 0;
	switch (a->u.sa.sa_family) {
	case AF_INET:
		return a->u.sin.sin_port == b->u.sin.sin_port &&
		       a->u.sin.sin_addr.s_addr == b->u.sin.sin_addr.s_addr;
	case AF_INET6:
		return a->u.sin6.sin6_port == b->u.sin6.sin6_port &&
		       memcmp(&a->u.sin6.sin6_addr, &b->u.sin6.sin6_addr,
			      16) == 0;
	default:
		return strcmp(a->u.sun.sun_path, b->u.sun.sun_path) == 0;
	}
}

/* A unix socket path left by a dead process: nobody accepts on it. */
static int
listen_unix_stale(const struct pt_listener *ls)
{
	struct stat st;
	int fd, rc;

	if (lstat(ls->addr.u.sun.sun_path, &st) != 0 || !S_ISSOCK(st.st_mode))
		return 0;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return 0;
	rc = connect(fd, &ls->addr.u.sa, ls->addr.len);
	close(fd);
	return rc < 0 && errno == ECONNREFUSED;
}

static int
listen_bind(struct pt_listener *ls, int fd)
{
	if (bind(fd, &ls->addr.u.sa, ls->addr.len) == 0)
		return PT_OK;
	if (errno == EADDRINUSE && ls->unix_path && listen_unix_stale(ls)) {
		unlink(ls->addr.u.sun.sun_path);
		if (bind(fd, &ls->addr.u.sa, ls->addr.len) == 0)
			return PT_OK;
	}
	pt_log(PT_LOG_CRIT, errno, "bind() to %s failed", ls->text);
	return PT_ERROR;
}

int
pt_listener_open(struct pt_listener *ls)
{
	int one = 1, fd;

	/* no SOCK_CLOEXEC: the socket must survive a binary upgrade */
	fd = socket(ls->addr.u.sa.sa_family, SOCK_STREAM | SOCK_NONBLOCK, 0);
	if (fd < 0) {
		pt_log(PT_LOG_CRIT, errno, "socket() for %s failed", ls->text);
		return PT_ERROR;
	}
	if (!ls->unix_path &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0)
		goto fail;
	if (ls->reuseport &&
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0)
		goto fail;
	/* [::] and 0.0.0.0 are separate sockets, as in nginx */
	if (ls->addr.u.sa.sa_family == AF_INET6 &&
	    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
		goto fail;
	/* a unix socket file is made 0666 by the umask at bind time, not by
	 * a chmod afterwards, which as root would follow a symlink planted
	 * in between */
	mode_t mask = ls->unix_path ? umask(0111) : 0;
	int brc = listen_bind(ls, fd);
	if (ls->unix_path)
		umask(mask);
	if (brc != PT_OK) {
		close(fd);
		return PT_ERROR;
	}
	if (listen(fd, ls->backlog) < 0)
		goto fail;
	ls->io.fd = fd;
	return PT_OK;
fail:
	pt_log(PT_LOG_CRIT, errno, "setting up %s failed", ls->text);
	close(fd);
	return PT_ERROR;
}

/* ---- inheritance across execve ---------------------------------------- */

/* Sized from the variable: an entry left unparsed would stay open, never
 * accepted on, and make the bind of its address fail. */
static struct inherit_fd {
	int fd;
	int slot;
	char text[PT_ADDR_TEXT];
} *inherit;
static unsigned ninherit;

void
pt_listen_inherit_init(void)
{
	const char *env = getenv("PORTIER_INHERIT");
	const char *p = env;
	size_t max = 1;

	if (env == NULL)
		return;
	for (const char *q = env; *q != '\0'; q++)
		max += *q == ';';
	inherit = calloc(max, sizeof(*inherit));
	if (inherit == NULL) {
		pt_log(PT_LOG_CRIT, errno, "PORTIER_INHERIT: out of memory");
		return;
	}
	while (*p != '\0' && ninherit < max) {
		const char *end = strchr(p, ';'), *colon, *hash;
		size_t len = end ? (size_t)(end - p) : strlen(p);
		uint64_t fd, slot = 0;

		colon = memchr(p, ':', len);
		hash = memchr(p, '#', len);
		if (colon != NULL &&
		    pt_parse_uint(p, (size_t)(colon - p), 65535, &fd) == PT_OK &&
		    (hash == NULL ||
		     pt_parse_uint(hash + 1, (size_t)(p + len - hash - 1),
				   65535, &slot) == PT_OK)) {
			size_t tlen = (size_t)((hash ? hash : p + len) - colon - 1);
			if (tlen < PT_ADDR_TEXT &&
			    fcntl((int)fd, F_GETFD) >= 0) {
				inherit[ninherit].fd = (int)fd;
				inherit[ninherit].slot = hash ? (int)slot : -1;
				memcpy(inherit[ninherit].text, colon + 1, tlen);
				inherit[ninherit].text[tlen] = '\0';
				ninherit++;
			}
		} else {
			pt_log(PT_LOG_WARN, 0,
			       "ignoring invalid PORTIER_INHERIT entry \"%.*s\"",
			       (int)len, p);
		}
		p += len;
		if (*p == ';')
			p++;
	}
	unsetenv("PORTIER_INHERIT");
	pt_log(PT_LOG_NOTICE, 0, "inherited %u listening sockets", ninherit);
}

int
pt_listener_inherit(struct pt_listener *ls)
{
	for (unsigned i = 0; i < ninherit; i++) {
		if (inherit[i].fd < 0 || inherit[i].slot != ls->slot ||
		    strcmp(inherit[i].text, ls->text) != 0)
			continue;
		ls->io.fd = inherit[i].fd;
		inherit[i].fd = -1;
		return 1;
	}
	return 0;
}

void
pt_listen_inherit_done(void)
{
	for (unsigned i = 0; i < ninherit; i++) {
		if (inherit[i].fd >= 0) {
			pt_log(PT_LOG_NOTICE, 0,
			       "closing inherited %s: no longer configured",
			       inherit[i].text);
			close(inherit[i].fd);
			inherit[i].fd = -1;
		}
	}
	ninherit = 0;
	free(inherit);
	inherit = NULL;
}

char *
pt_listen_inherit_env(struct pt_cycle *c)
{
	size_t cap = 16 + (size_t)c->nlisteners * (PT_ADDR_TEXT + 24), n = 0;
	char *s = malloc(cap);

	if (s == NULL)
		return NULL;
	n = (size_t)snprintf(s, cap, "PORTIER_INHERIT=");
	for (unsigned i = 0; i < c->nlisteners; i++) {
		struct pt_listener *ls = &c->listeners[i];
		int r;
		if (ls->io.fd < 0)
			continue;
		r = ls->slot >= 0
			    ? snprintf(s + n, cap - n, "%d:%s#%d;", ls->io.fd,
				       ls->text, ls->slot)
			    : snprintf(s + n, cap - n, "%d:%s;", ls->io.fd,
				       ls->text);
		if (r < 0 || (size_t)r >= cap - n)
			break;
		n += (size_t)r;
	}
	return s;
}
