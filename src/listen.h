/*
 * listen.h: listening sockets. A listener is one bound socket; with
 * `reuseport` there is one per worker slot, each worker accepting only on
 * its own. Listeners survive reloads (matched by address) and binary
 * upgrades (passed through execve and announced in PORTIER_INHERIT).
 */
#ifndef PT_LISTEN_H
#define PT_LISTEN_H

#include "core.h"
#include "event.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

struct pt_cycle;
struct pt_conn;

struct pt_sockaddr {
	union {
		struct sockaddr sa;
		struct sockaddr_in sin;
		struct sockaddr_in6 sin6;
		struct sockaddr_un sun;
	} u;
	socklen_t len;
};

#define PT_ADDR_TEXT 128 /* "[ipv6]:port" or "unix:" + a path */

struct pt_listener {
	struct pt_io io;
	struct pt_sockaddr addr;
	char text[PT_ADDR_TEXT];
	int backlog;
	int slot;               /* reuseport: worker slot; -1: shared */
	unsigned reuseport : 1;
	unsigned wildcard : 1;  /* 0.0.0.0 or [::]: local address varies */
	unsigned unix_path : 1;
	unsigned taken : 1;     /* fd moved to a newer cycle */
	unsigned paused : 1;    /* out of connections: not in epoll */
	void *ctx;              /* the protocol's table for this socket */
	void (*handler)(struct pt_conn *c); /* a new connection */
	struct pt_cycle *cycle;
};

/*
 * Parse "host:port", "[v6]:port", "*:port", "port" or "unix:/path" into
 * addr, with its canonical text. PT_OK, or PT_ERROR with err filled.
 */
int pt_addr_parse(const char *s, struct pt_sockaddr *addr, char *text,
		  size_t textlen, char *err, size_t errlen);

/* Canonical text of a socket address ("127.0.0.1:80", "[::1]:80"). */
void pt_addr_text(const struct sockaddr *sa, socklen_t len, char *buf,
		  size_t buflen);

/* Text of the IP alone ("127.0.0.1", "::1", "unix:") and the port. */
size_t pt_addr_ip(const struct sockaddr *sa, char *buf, size_t buflen);
unsigned pt_addr_port(const struct sockaddr *sa);

/* 1 for 0.0.0.0 and [::] (any port), 0 otherwise (unix sockets too). */
int pt_addr_is_wildcard(const struct pt_sockaddr *a);
/* 1 if a and b are the same family, address and port (or unix path). */
int pt_addr_equal(const struct pt_sockaddr *a, const struct pt_sockaddr *b);

/* Create, bind and listen. Returns PT_OK or PT_ERROR (logged). */
int pt_listener_open(struct pt_listener *ls);

/* Parse PORTIER_INHERIT once; used by pt_listener_inherit(). */
void pt_listen_inherit_init(void);
/* Take an inherited fd for ls if one matches; 1 if taken. */
int pt_listener_inherit(struct pt_listener *ls);
/* Close inherited fds that no listener took. */
void pt_listen_inherit_done(void);

/* Build the PORTIER_INHERIT value for a cycle's listeners (malloc'ed). */
char *pt_listen_inherit_env(struct pt_cycle *c);

#endif
