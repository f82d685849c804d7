/*
 * proxy_protocol.h: the PROXY protocol header (HAProxy's proxy-protocol
 * spec, versions 1 and 2) that a load balancer sends first on a
 * connection to say whose connection it relays.
 */
#ifndef PT_PROXY_PROTOCOL_H
#define PT_PROXY_PROTOCOL_H

#include "core.h"
#include "listen.h"

/* A version 1 header is one line of at most this many bytes, CRLF
 * included. */
#define PT_PROXY_V1_MAX 107

struct pt_proxy_protocol {
	struct pt_sockaddr src, dst; /* set when has_addr */
	unsigned version;            /* 1 or 2 */
	unsigned has_addr : 1; /* TCP over IPv4 or IPv6; not for v1
				* UNKNOWN, v2 LOCAL or v2 UNSPEC, where the
				* connection's own addresses stand */
};

/*
 * Parse the PROXY header at the start of buf[0..len). Returns its length
 * (> 0) with *pp filled; PT_AGAIN when the bytes so far are a valid
 * beginning and more are needed; PT_ERROR when they can not begin a
 * valid header, with *why a static text saying why. A v2 header's
 * TLVs are skipped. Nothing is allocated; buf need not be terminated.
 */
int pt_proxy_protocol_parse(const char *buf, size_t len,
			    struct pt_proxy_protocol *pp, const char **why);

#endif
