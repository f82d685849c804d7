/*
 * buf.h: buffers and chains. A buffer describes bytes in memory
 * [pos, last) or a region of an open file [file_pos, file_last); bodies
 * travel through the filters as chains of buffers, so a file is sent with
 * sendfile(2) and never copied through user space.
 */
#ifndef PT_BUF_H
#define PT_BUF_H

#include "core.h"

#include <sys/types.h>

struct pt_pool;

struct pt_buf {
	char *pos, *last;   /* memory data */
	int fd;             /* file data when in_file */
	off_t file_pos, file_last;
	unsigned in_file : 1;
	unsigned last_buf : 1; /* the end of the body */
	unsigned no_sendfile : 1; /* copy through a buffer, not sendfile */
};

struct pt_chain {
	struct pt_buf *buf;
	struct pt_chain *next;
};

static inline off_t
pt_buf_size(const struct pt_buf *b)
{
	return b->in_file ? b->file_last - b->file_pos
			  : (off_t)(b->last - b->pos);
}

/* A chain link holding a memory buffer over [p, p + len); NULL on OOM. */
struct pt_chain *pt_chain_mem(struct pt_pool *pool, const char *p,
			      size_t len);

/* A chain link holding a file region; NULL on OOM. */
struct pt_chain *pt_chain_file(struct pt_pool *pool, int fd, off_t from,
			       off_t to);

#endif
