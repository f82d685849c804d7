/*
 * http_output.c: the end of the filter chains, where a response becomes
 * bytes on the socket, and the special responses (error pages,
 * redirects).
 *
 * The head is serialized once into the request pool and queued, not
 * written: the first body buffers join it in one writev(2), or in one
 * sendmsg(MSG_MORE) before a sendfile(2), so a small response costs one
 * system call. Pending output is a chain; pt_http_flush() writes as much
 * as the socket takes and reports PT_AGAIN when it is full.
 */
#include "core.h"
#include "cycle.h"
#include "http.h"
#include "log.h"
#include "pool.h"
#include "ptime.h"
#include "sockio.h"

#include <errno.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#define OUT_IOV 64
#define OUT_BOUNCE 32768

struct status_line {
	int code;
	const char *text;
};

static const struct status_line statuses[] = {
	{ 100, "100 Continue" },
	{ 101, "101 Switching Protocols" },
	{ 200, "200 OK" },
	{ 201, "201 Created" },
	{ 202, "202 Accepted" },
	{ 203, "203 Non-Authoritative Information" },
	{ 204, "204 No Content" },
	{ 205, "205 Reset Content" },
	{ 206, "206 Partial Content" },
	{ 300, "300 Multiple Choices" },
	{ 301, "301 Moved Permanently" },
	{ 302, "302 Found" },
	{ 303, "303 See Other" },
	{ 304, "304 Not Modified" },
	{ 307, "307 Temporary Redirect" },
	{ 308, "308 Permanent Redirect" },
	{ 400, "400 Bad Request" },
	{ 401, "401 Unauthorized" },
	{ 402, "402 Payment Required" },
	{ 403, "403 Forbidden" },
	{ 404, "404 Not Found" },
	{ 405, "405 Method Not Allowed" },
	{ 406, "406 Not Acceptable" },
	{ 408, "408 Request Timeout" },
	{ 409, "409 Conflict" },
	{ 410, "410 Gone" },
	{ 411, "411 Length Required" },
	{ 412, "412 Precondition Failed" },
	{ 413, "413 Content Too Large" },
	{ 414, "414 URI Too Long" },
	{ 415, "415 Unsupported Media Type" },
	{ 416, "416 Range Not Satisfiable" },
	{ 417, "417 Expectation Failed" },
	{ 421, "421 Misdirected Request" },
	{ 422, "422 Unprocessable Content" },
	{ 426, "426 Upgrade Required" },
	{ 428, "428 Precondition Required" },
	{ 429, "429 Too Many Requests" },
	{ 431, "431 Request Header Fields Too Large" },
	{ 451, "451 Unavailable For Legal Reasons" },
	{ 500, "500 Internal Server Error" },
	{ 501, "501 Not Implemented" },
	{ 502, "502 Bad Gateway" },
	{ 503, "503 Service Unavailable" },
	{ 504, "504 Gateway Timeout" },
	{ 505, "505 HTTP Version Not Supported" },
	{ 507, "507 Insufficient Storage" },
};

const char *
pt_http_status_text(int status, size_t *len)
{
	size_t lo = 0, hi = PT_ARRAY_SIZE(statuses);

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		if (statuses[mid].code == status) {
			*len = strlen(statuses[mid].text);
			return statuses[mid].text;
		}
		if (statuses[mid].code < status)
			lo = mid + 1;
		else
			hi = mid;
	}
	*len = 0;
	return NULL;
}

struct pt_chain *
pt_chain_mem(struct pt_pool *pool, const char *p, size_t len)
{
	struct pt_chain *cl = pt_palloc(pool, sizeof(*cl) + sizeof(*cl->buf));

	if (cl == NULL)
		return NULL;
	cl->buf = (struct pt_buf *)(cl + 1);
	memset(cl->buf, 0, sizeof(*cl->buf));
	cl->buf->pos = (char *)(uintptr_t)p;
	cl->buf->last = cl->buf->pos + len;
	cl->buf->fd = -1;
	cl->next = NULL;
	return cl;
}

struct pt_chain *
pt_chain_file(struct pt_pool *pool, int fd, off_t from, off_t to)
{
	struct pt_chain *cl = pt_chain_mem(pool, NULL, 0);

	if (cl == NULL)
		return NULL;
	cl->buf->in_file = 1;
	cl->buf->fd = fd;
	cl->buf->file_pos = from;
	cl->buf->file_last = to;
	return cl;
}

int
pt_http_add_header(struct pt_http_request *r, const char *name, size_t nlen,
		   const char *value, size_t vlen)
{
	struct pt_http_out_header *h = pt_palloc(r->pool, sizeof(*h));

	if (h == NULL)
		return PT_ERROR;
	h->name.data = name;
	h->name.len = nlen;
	h->value.data = value;
	h->value.len = vlen;
	h->next = NULL;
	*r->out.tail = h;
	r->out.tail = &h->next;
	return PT_OK;
}

/* ---- the head ------------------------------------------------------------ */

#define OUT_PUT(p, s, n) (memcpy((p), (s), (n)), (p) += (n))
#define OUT_LIT(p, lit) OUT_PUT(p, lit, sizeof(lit) - 1)

/*
 * After these errors the connection stays usable; after the others (a
 * bad head, a body that was not read, a server failure) it is closed.
 */
int
pt_http_status_keeps_conn(int status)
{
	if (status < 400)
		return 1;
	switch (status) {
	case 401: case 403: case 404: case 405: case 406: case 409:
	case 410: case 412: case 415: case 416: case 421: case 422:
	case 428: case 429: case 451:
		return 1;
	default:
		return 0;
	}
}

static int
out_has_body(int status)
{
	return !(status < 200 || status == 204 || status == 304);
}

/* "NNN Reason" for status; "NNN " when we know no reason phrase (the
 * status line keeps its space). NULL on out of memory. */
const char *
pt_http_status_line(struct pt_http_request *r, int status, size_t *len)
{
	const char *st = pt_http_status_text(status, len);
	char *code;

	if (st != NULL)
		return st;
	code = pt_psprintf(r->pool, "%03d ", status);
	*len = 4;
	return code;
}

/* The decisions the head states: keep-alive, and whether a body follows. */
static void
out_head_decide(struct pt_http_request *r)
{
	struct pt_http_response *o = &r->out;

	/* keepalive_timeout 0, keepalive_requests, a graceful exit, and a
	 * body the client holds back until a "100 Continue" never sent */
	pt_http_keepalive_check(r);
	if (r->keepalive && !r->body.done && r->h.expect_continue &&
	    !r->expect_tested)
		r->keepalive = 0;
	if (!out_has_body(o->status)) {
		r->header_only = 1;
		o->content_length = -1;
	}
	if (o->chunked && (r->header_only || r->h.version < 11 ||
			   o->content_length >= 0))
		o->chunked = 0;
	if (o->status == 101)
		return; /* the connection becomes a tunnel */
	if (o->content_length < 0 && !r->header_only && !o->chunked)
		r->keepalive = 0; /* the close delimits the body */
}

static size_t
out_head_size(const struct pt_http_request *r, size_t stlen)
{
	const struct pt_http_response *o = &r->out;
	size_t len = sizeof("HTTP/1.1 \r\n") + stlen +
		     sizeof("Server: portier/" PACKAGE_VERSION "\r\n") +
		     sizeof("Date: \r\n") + sizeof(pt_now.http_date) +
		     sizeof("Connection: keep-alive\r\n") + 2;

	if (o->content_type.len)
		len += sizeof("Content-Type: \r\n") + o->content_type.len;
	if (o->content_length >= 0)
		len += sizeof("Content-Length: \r\n") + 20;
	if (o->last_modified >= 0)
		len += sizeof("Last-Modified: \r\n") + sizeof(pt_now.http_date);
	if (o->etag.len)
		len += sizeof("ETag: \r\n") + o->etag.len;
	if (o->location.len)
		len += sizeof("Location: \r\n") + o->location.len;
	if (o->content_range.len)
		len += sizeof("Content-Range: \r\n") + o->content_range.len;
	if (o->chunked)
		len += sizeof("Transfer-Encoding: chunked\r\n");
	if (o->upgrade.len)
		len += sizeof("Connection: upgrade\r\nUpgrade: \r\n") +
		       o->upgrade.len;
	for (const struct pt_http_out_header *h = o->headers; h; h = h->next)
		len += h->name.len + h->value.len + 4;
	return len;
}

/* "Name: value\r\n" at p; returns the end. */
static char *
out_field(char *p, const char *name, size_t nlen, struct pt_str v)
{
	OUT_PUT(p, name, nlen);
	OUT_LIT(p, ": ");
	OUT_PUT(p, v.data, v.len);
	OUT_LIT(p, "\r\n");
	return p;
}

#define OUT_FIELD(p, lit, v) ((p) = out_field((p), lit, sizeof(lit) - 1, (v)))

static char *
out_head_write(const struct pt_http_request *r, char *p, const char *st,
	       size_t stlen)
{
	const struct pt_http_response *o = &r->out;
	char lm[sizeof(pt_now.http_date)];

	OUT_LIT(p, "HTTP/1.1 ");
	OUT_PUT(p, st, stlen);
	if (pt_http_core_loc(r)->server_tokens)
		OUT_LIT(p, "\r\nServer: portier/" PACKAGE_VERSION "\r\nDate: ");
	else
		OUT_LIT(p, "\r\nServer: portier\r\nDate: ");
	OUT_PUT(p, pt_now.http_date, strlen(pt_now.http_date));
	OUT_LIT(p, "\r\n");
	if (o->content_type.len)
		OUT_FIELD(p, "Content-Type", o->content_type);
	if (o->content_length >= 0)
		p += sprintf(p, "Content-Length: %lld\r\n",
			     (long long)o->content_length);
	if (o->last_modified >= 0) {
		pt_time_http(o->last_modified, lm);
		OUT_FIELD(p, "Last-Modified", ((struct pt_str){ lm, strlen(lm) }));
	}
	if (o->etag.len)
		OUT_FIELD(p, "ETag", o->etag);
	if (o->location.len)
		OUT_FIELD(p, "Location", o->location);
	if (o->content_range.len)
		OUT_FIELD(p, "Content-Range", o->content_range);
	for (const struct pt_http_out_header *h = o->headers; h; h = h->next)
		p = out_field(p, h->name.data, h->name.len, h->value);
	if (o->chunked)
		OUT_LIT(p, "Transfer-Encoding: chunked\r\n");
	if (o->status == 101) {
		OUT_LIT(p, "Connection: upgrade\r\n");
		if (o->upgrade.len)
			OUT_FIELD(p, "Upgrade", o->upgrade);
	} else if (!r->keepalive)
		OUT_LIT(p, "Connection: close\r\n");
	else if (r->h.version == 10)
		OUT_LIT(p, "Connection: keep-alive\r\n");
	OUT_LIT(p, "\r\n");
	return p;
}

int
pt_http_queue_header(struct pt_http_request *r)
{
	const char *st;
	size_t stlen, len;
	char *head, *end;
	struct pt_chain *cl;

	if (r->header_sent)
		return PT_OK;
	r->header_sent = 1;
	out_head_decide(r);
	st = pt_http_status_line(r, r->out.status, &stlen);
	if (st == NULL)
		return PT_ERROR;
	len = out_head_size(r, stlen);
	head = pt_pnalloc(r->pool, len);
	if (head == NULL)
		return PT_ERROR;
	end = out_head_write(r, head, st, stlen);
	PT_ASSERT((size_t)(end - head) <= len);

	r->head_bytes = end - head;
	cl = pt_chain_mem(r->pool, head, (size_t)(end - head));
	if (cl == NULL)
		return PT_ERROR;
	*r->pending_tail = cl;
	r->pending_tail = &cl->next;
	if (r->header_only)
		r->body_sent_all = 1;
	return PT_OK;
}

int
pt_http_queue_body(struct pt_http_request *r, struct pt_chain *in)
{
	if (r->header_only) {
		/* HEAD, 204, 304: whatever the handler made is dropped */
		r->body_sent_all = 1;
		return pt_http_flush(r);
	}
	for (struct pt_chain *cl = in; cl != NULL; cl = cl->next) {
		if (cl->buf->last_buf)
			r->body_sent_all = 1;
		if (pt_buf_size(cl->buf) == 0 && cl->next != NULL)
			continue;
		*r->pending_tail = cl;
		r->pending_tail = &cl->next;
		if (cl->next == NULL)
			break;
	}
	return pt_http_flush(r);
}

/* ---- writing ------------------------------------------------------------- */

static void
out_consume(struct pt_http_request *r, size_t n)
{
	while (r->pending != NULL) {
		struct pt_buf *b = r->pending->buf;
		size_t sz = (size_t)pt_buf_size(b);
		if (n < sz) {
			if (b->in_file)
				b->file_pos += (off_t)n;
			else
				b->pos += n;
			return;
		}
		n -= sz;
		r->pending = r->pending->next;
		if (r->pending == NULL)
			r->pending_tail = &r->pending;
	}
}

/* Write the memory buffers at the head of pending in one system call. */
static ssize_t
out_write_mem(struct pt_http_request *r, int fd)
{
	struct iovec iov[OUT_IOV];
	unsigned n = 0;
	struct pt_chain *cl;

	for (cl = r->pending; cl != NULL && n < OUT_IOV; cl = cl->next) {
		struct pt_buf *b = cl->buf;
		if (b->in_file)
			break;
		if (b->last == b->pos)
			continue;
		iov[n].iov_base = b->pos;
		iov[n].iov_len = (size_t)(b->last - b->pos);
		n++;
	}
	if (n == 0)
		return 0;
	/*
	 * No MSG_MORE before a sendfile, although it would save a segment:
	 * measured with contrib/bench (1 MiB file), corking the head made
	 * the following sendfile(2) cost 2.7 times as much CPU.
	 */
	return pt_sock_writev(fd, r->conn->ssl, iov, (int)n);
}

/*
 * A file buffer without sendfile: read a block into r->bounce and send
 * from there. The bounce buffer holds the unsent bytes from b->file_pos,
 * so b->file_pos always counts what the client has been sent.
 */
static ssize_t
out_write_copy(struct pt_http_request *r, struct pt_buf *b, int fd)
{
	ssize_t n;

	if (r->bounce == NULL) {
		r->bounce = pt_pnalloc(r->pool, OUT_BOUNCE);
		if (r->bounce == NULL) {
			errno = ENOMEM;
			return -1;
		}
	}
	if (r->bounce_pos == r->bounce_last) {
		size_t want = (size_t)PT_MIN(b->file_last - b->file_pos,
					     (off_t)OUT_BOUNCE);
		n = pread(b->fd, r->bounce, want, b->file_pos);
		if (n <= 0) {
			pt_http_log(r, PT_LOG_ERR, n < 0 ? errno : 0,
				    "reading the file failed");
			errno = n < 0 ? errno : EIO;
			return -1;
		}
		r->bounce_pos = 0;
		r->bounce_last = (uint32_t)n;
	}
	n = pt_sock_send(fd, r->conn->ssl, r->bounce + r->bounce_pos,
			 r->bounce_last - r->bounce_pos);
	if (n > 0)
		r->bounce_pos += (uint32_t)n;
	return n;
}

int
pt_http_flush(struct pt_http_request *r)
{
	struct pt_conn *c = r->conn;
	int fd = c->io.fd;

	while (r->pending != NULL) {
		struct pt_buf *b = r->pending->buf;
		ssize_t n;

		if (pt_buf_size(b) == 0) {
			out_consume(r, 0);
			continue;
		}
		if (!c->io.writable)
			return PT_AGAIN;
		/* TLS encrypts in user space: a file is read, then sent */
		if (b->in_file && (b->no_sendfile || c->ssl != NULL)) {
			n = out_write_copy(r, b, fd);
			if (n < 0 && errno != EAGAIN && errno != EINTR &&
			    errno != EPIPE && errno != ECONNRESET)
				return PT_ERROR;
		} else if (b->in_file) {
			off_t off = b->file_pos;
			size_t count = (size_t)PT_MIN(b->file_last - b->file_pos,
						      (off_t)1 << 30);
			n = sendfile(fd, b->fd, &off, count);
			if (n == 0) {
				pt_http_log(r, PT_LOG_ERR, 0,
					    "sendfile() reached the end of "
					    "the file early: was it "
					    "truncated?");
				return PT_ERROR;
			}
		} else {
			n = out_write_mem(r, fd);
		}
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR) {
				if (errno == EAGAIN)
					c->io.writable = 0;
				continue;
			}
			r->client_gone = errno == EPIPE || errno == ECONNRESET;
			pt_http_log(r, r->client_gone ? PT_LOG_INFO : PT_LOG_ERR,
				    errno, "writing the response failed");
			return PT_ERROR;
		}
		r->bytes_sent += n;
		out_consume(r, (size_t)n);
	}
	return PT_OK;
}

/* ---- special responses ---------------------------------------------------- */

static const char special_tail[] =
	"</h1></center>\r\n<hr><center>portier</center>\r\n</body>\r\n"
	"</html>\r\n";

/*
 * Queue the error page (or redirect) of status. PT_OK when it is queued,
 * whether or not the socket took it yet (the caller flushes the rest);
 * PT_ERROR when it could not be built or the write failed.
 */
int
pt_http_special_response(struct pt_http_request *r, int status)
{
	size_t stlen;
	const char *st;
	struct pt_chain *cl;
	char *body;
	size_t blen;

	if (status < 100 || status > 599) {
		pt_http_log(r, PT_LOG_ERR, 0, "invalid status %d", status);
		status = 500;
	}
	st = pt_http_status_line(r, status, &stlen);
	if (st == NULL)
		return PT_ERROR;
	if (st[stlen - 1] == ' ')
		stlen--; /* "418 ": the page's title is the code alone */
	r->out.status = status;
	r->error_page = 1;
	/*
	 * Drop what describes a representation the handler did not send;
	 * keep the fields it added for this answer (Allow on a 405,
	 * WWW-Authenticate on a 401, Retry-After on a 503).
	 */
	r->out.etag.len = 0;
	r->out.content_range.len = 0;
	r->out.last_modified = -1;
	if (!pt_http_status_keeps_conn(status))
		r->keepalive = 0;
	if (status == 416 && r->out.content_length >= 0) {
		char *cr = pt_psprintf(r->pool, "bytes */%lld",
				       (long long)r->out.content_length);
		if (cr != NULL) {
			r->out.content_range.data = cr;
			r->out.content_range.len = strlen(cr);
		}
	}
	if (!out_has_body(status)) {
		r->out.content_length = -1;
		r->out.content_type.len = 0;
		if (pt_http_send_header(r) != PT_OK)
			return PT_ERROR;
		/* PT_AGAIN (socket full) is not a failure: the caller flushes */
		return pt_http_output(r, NULL) == PT_ERROR ? PT_ERROR : PT_OK;
	}
	blen = sizeof("<html>\r\n<head><title></title></head>\r\n<body>\r\n"
		      "<center><h1>") - 1 + 2 * stlen + sizeof(special_tail) - 1;
	body = pt_pnalloc(r->pool, blen + 1);
	if (body == NULL)
		return PT_ERROR;
	snprintf(body, blen + 1,
		 "<html>\r\n<head><title>%.*s</title></head>\r\n<body>\r\n"
		 "<center><h1>%.*s%s",
		 (int)stlen, st, (int)stlen, st, special_tail);
	r->out.content_type.data = "text/html";
	r->out.content_type.len = 9;
	r->out.content_length = (int64_t)blen;
	if (pt_http_send_header(r) != PT_OK)
		return PT_ERROR;
	cl = pt_chain_mem(r->pool, body, blen);
	if (cl == NULL)
		return PT_ERROR;
	cl->buf->last_buf = 1;
	return pt_http_output(r, cl) == PT_ERROR ? PT_ERROR : PT_OK;
}
