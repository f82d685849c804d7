/*
 * ptime.h: the cached clock. The event loop calls pt_time_update() once per
 * wakeup; everything else reads the cached values, so a request costs no
 * clock or formatting work for its Date header or log line. The formatted
 * strings are rebuilt at most once a second.
 */
#ifndef PT_PTIME_H
#define PT_PTIME_H

#include "core.h"

#include <time.h>

struct pt_time {
	int64_t mono_ms;  /* monotonic, for timers and durations */
	int64_t wall_ms;  /* Unix time in milliseconds */
	time_t wall_sec;
	/* room beyond the usual length only quiets -Wformat-truncation */
	char http_date[48]; /* Sun, 22 Nov 2026 19:00:00 GMT */
	char log_time[48];  /* 2026/11/22 19:00:00 */
	char clf_time[48];  /* 22/Nov/2026:19:00:00 +0000 */
	char iso8601[48];   /* 2026-11-22T19:00:00+00:00 */
};

/* The process's cached time, refreshed by pt_time_update(). */
extern struct pt_time pt_now;

void pt_time_update(void);

/* Format t (Unix seconds) as an IMF-fixdate into buf (48 bytes). */
void pt_time_http(time_t t, char *buf);

/* Parse an HTTP date (IMF-fixdate, RFC 850 or asctime); -1 if invalid. */
time_t pt_time_parse_http(const char *p, size_t len);

#endif
