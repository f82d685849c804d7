/*
 * proxy_protocol.c: parsing the PROXY protocol header, versions 1 and 2.
 *
 * A pure function over the bytes received so far, so the connection can
 * call it after every read: it answers "a header of N bytes", "a valid
 * beginning, more to come" or "not a header". A prefix is refused as
 * soon as it can no longer become a header (a plain "GET /" fails on its
 * first byte), so a client that does not speak the protocol is not kept
 * waiting for the timeout.
 *
 * Version 1 is one text line, "PROXY TCP4|TCP6 src dst sport dport\r\n"
 * or "PROXY UNKNOWN ...\r\n", of at most 107 bytes; it is parsed
 * strictly (single spaces, addresses of the named family, ports
 * 0..65535). Version 2 is a 16-byte binary head (signature, version and
 * command, family and transport, length) and an address block whose
 * TLVs are skipped: LOCAL and UNSPEC are accepted without addresses,
 * PROXY over TCP/IPv4 and TCP/IPv6 give addresses, anything else (UDP,
 * unix sockets) is refused.
 */
#include "core.h"
#include "proxy_protocol.h"

#include <arpa/inet.h>

static const char pp_v1_sig[] = "PROXY ";
static const unsigned char pp_v2_sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00,
					     0x0d, 0x0a, 0x51, 0x55, 0x49,
					     0x54, 0x0a };

/* ---- version 1 --------------------------------------------------------------- */

/* The next field of a v1 line: up to the next space or the end. */
static struct pt_str
pp_field(const char **p, const char *end)
{
	struct pt_str f = { *p, 0 };

	while (*p < end && **p != ' ')
		(*p)++;
	f.len = (size_t)(*p - f.data);
	if (*p < end)
		(*p)++; /* the single space */
	return f;
}

static int
pp_v1_addr(struct pt_str f, int family, struct pt_sockaddr *a)
{
	char ip[INET6_ADDRSTRLEN + 1];

	if (f.len == 0 || f.len >= sizeof(ip))
		return PT_ERROR;
	memcpy(ip, f.data, f.len);
	ip[f.len] = '\0';
	memset(a, 0, sizeof(*a));
	if (family == AF_INET) {
		a->u.sin.sin_family = AF_INET;
		a->len = sizeof(a->u.sin);
		return inet_pton(AF_INET, ip, &a->u.sin.sin_addr) == 1
			       ? PT_OK
			       : PT_ERROR;
	}
	a->u.sin6.sin6_family = AF_INET6;
	a->len = sizeof(a->u.sin6);
	return inet_pton(AF_INET6, ip, &a->u.sin6.sin6_addr) == 1 ? PT_OK
								  : PT_ERROR;
}

static int
pp_v1_port(struct pt_str f, struct pt_sockaddr *a)
{
	unsigned v = 0;

	if (f.len == 0 || f.len > 5)
		return PT_ERROR;
	for (size_t i = 0; i < f.len; i++) {
		if (f.data[i] < '0' || f.data[i] > '9')
			return PT_ERROR;
		v = v * 10 + (unsigned)(f.data[i] - '0');
	}
	if (v > 65535)
		return PT_ERROR;
	if (a->u.sa.sa_family == AF_INET)
		a->u.sin.sin_port = htons((uint16_t)v);
	else
		a->u.sin6.sin6_port = htons((uint16_t)v);
	return PT_OK;
}

/* The line between "PROXY " and CRLF. */
static int
pp_v1_line(const char *p, const char *end, struct pt_proxy_protocol *pp,
	   const char **why)
{
	struct pt_str proto = pp_field(&p, end), f[4];
	int family;

	if (PT_STR_EQ(proto, "UNKNOWN"))
		return PT_OK; /* the rest of the line does not matter */
	if (PT_STR_EQ(proto, "TCP4"))
		family = AF_INET;
	else if (PT_STR_EQ(proto, "TCP6"))
		family = AF_INET6;
	else {
		*why = "v1: protocol is not TCP4, TCP6 or UNKNOWN";
		return PT_ERROR;
	}
	for (unsigned i = 0; i < 4; i++)
		f[i] = pp_field(&p, end);
	if (p != end || f[3].data + f[3].len != end) {
		*why = "v1: not four fields after the protocol";
		return PT_ERROR;
	}
	if (pp_v1_addr(f[0], family, &pp->src) != PT_OK ||
	    pp_v1_addr(f[1], family, &pp->dst) != PT_OK) {
		*why = "v1: invalid address";
		return PT_ERROR;
	}
	if (pp_v1_port(f[2], &pp->src) != PT_OK ||
	    pp_v1_port(f[3], &pp->dst) != PT_OK) {
		*why = "v1: invalid port";
		return PT_ERROR;
	}
	pp->has_addr = 1;
	return PT_OK;
}

static int
pp_v1(const char *buf, size_t len, struct pt_proxy_protocol *pp,
      const char **why)
{
	size_t n = PT_MIN(len, (size_t)PT_PROXY_V1_MAX);
	const char *cr;

	if (memcmp(buf, pp_v1_sig, PT_MIN(len, sizeof(pp_v1_sig) - 1)) != 0) {
		*why = "not a PROXY protocol header";
		return PT_ERROR;
	}
	for (size_t i = 0; i < n; i++) {
		if (buf[i] == '\n' || buf[i] == '\0') {
			*why = "v1: LF or NUL in the line";
			return PT_ERROR;
		}
		if (buf[i] != '\r')
			continue;
		if (i + 1 == PT_PROXY_V1_MAX)
			break; /* no room left for the LF */
		if (i + 1 == len)
			return PT_AGAIN;
		if (buf[i + 1] != '\n') {
			*why = "v1: CR without LF";
			return PT_ERROR;
		}
		/* "PROXY " matched above: the CR comes after it */
		cr = buf + i;
		pp->version = 1;
		if (pp_v1_line(buf + sizeof(pp_v1_sig) - 1, cr, pp, why) !=
		    PT_OK)
			return PT_ERROR;
		return (int)(i + 2);
	}
	if (n == PT_PROXY_V1_MAX) {
		*why = "v1: no CRLF within 107 bytes";
		return PT_ERROR;
	}
	return PT_AGAIN;
}

/* ---- version 2 --------------------------------------------------------------- */

static void
pp_v2_inet(const unsigned char *a, struct pt_proxy_protocol *pp)
{
	memset(&pp->src, 0, sizeof(pp->src));
	memset(&pp->dst, 0, sizeof(pp->dst));
	pp->src.u.sin.sin_family = pp->dst.u.sin.sin_family = AF_INET;
	pp->src.len = pp->dst.len = sizeof(pp->src.u.sin);
	memcpy(&pp->src.u.sin.sin_addr, a, 4);
	memcpy(&pp->dst.u.sin.sin_addr, a + 4, 4);
	memcpy(&pp->src.u.sin.sin_port, a + 8, 2);
	memcpy(&pp->dst.u.sin.sin_port, a + 10, 2);
}

static void
pp_v2_inet6(const unsigned char *a, struct pt_proxy_protocol *pp)
{
	memset(&pp->src, 0, sizeof(pp->src));
	memset(&pp->dst, 0, sizeof(pp->dst));
	pp->src.u.sin6.sin6_family = pp->dst.u.sin6.sin6_family = AF_INET6;
	pp->src.len = pp->dst.len = sizeof(pp->src.u.sin6);
	memcpy(&pp->src.u.sin6.sin6_addr, a, 16);
	memcpy(&pp->dst.u.sin6.sin6_addr, a + 16, 16);
	memcpy(&pp->src.u.sin6.sin6_port, a + 32, 2);
	memcpy(&pp->dst.u.sin6.sin6_port, a + 34, 2);
}

static int
pp_v2(const unsigned char *b, size_t len, struct pt_proxy_protocol *pp,
      const char **why)
{
	size_t body, need;

	if (memcmp(b, pp_v2_sig, PT_MIN(len, sizeof(pp_v2_sig))) != 0) {
		*why = "not a PROXY protocol header";
		return PT_ERROR;
	}
	if (len > 12 && (b[12] >> 4) != 2) {
		*why = "v2: version is not 2";
		return PT_ERROR;
	}
	if (len > 12 && (b[12] & 0x0f) > 1) {
		*why = "v2: command is not LOCAL or PROXY";
		return PT_ERROR;
	}
	if (len < 16)
		return PT_AGAIN;
	body = (size_t)b[14] << 8 | b[15];
	pp->version = 2;
	if ((b[12] & 0x0f) == 0)
		need = 0; /* LOCAL: the block is skipped, whatever it holds */
	else if (b[13] == 0x00)
		need = 0; /* UNSPEC */
	else if (b[13] == 0x11)
		need = 12; /* TCP over IPv4 */
	else if (b[13] == 0x21)
		need = 36; /* TCP over IPv6 */
	else {
		*why = "v2: not TCP over IPv4 or IPv6";
		return PT_ERROR;
	}
	if (body < need) {
		*why = "v2: address block too short for its family";
		return PT_ERROR;
	}
	if (len < 16 + body)
		return PT_AGAIN;
	if (need == 12)
		pp_v2_inet(b + 16, pp);
	else if (need == 36)
		pp_v2_inet6(b + 16, pp);
	pp->has_addr = need != 0;
	return (int)(16 + body);
}

int
pt_proxy_protocol_parse(const char *buf, size_t len,
			struct pt_proxy_protocol *pp, const char **why)
{
	memset(pp, 0, sizeof(*pp));
	*why = NULL;
	if (len == 0)
		return PT_AGAIN;
	if (buf[0] == 'P')
		return pp_v1(buf, len, pp, why);
	if (buf[0] == '\r')
		return pp_v2((const unsigned char *)buf, len, pp, why);
	*why = "not a PROXY protocol header";
	return PT_ERROR;
}
