/*
 * ptime.c: the cached clock and HTTP date formatting/parsing.
 * All times are UTC: logs and HTTP dates do not depend on the TZ setting.
 */
#include "core.h"
#include "ptime.h"

#include <ctype.h>

struct pt_time pt_now;

static const char *const wdays[] = { "Sun", "Mon", "Tue", "Wed",
				     "Thu", "Fri", "Sat" };
static const char *const months[] = { "Jan", "Feb", "Mar", "Apr",
				      "May", "Jun", "Jul", "Aug",
				      "Sep", "Oct", "Nov", "Dec" };

void
pt_time_http(time_t t, char *buf)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, 48, "%s, %02d %s %04d %02d:%02d:%02d GMT",
		 wdays[tm.tm_wday], tm.tm_mday, months[tm.tm_mon],
		 tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

void
pt_time_update(void)
{
	struct timespec ts;
	struct tm tm;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	pt_now.mono_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	clock_gettime(CLOCK_REALTIME, &ts);
	pt_now.wall_ms = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
	if (ts.tv_sec == pt_now.wall_sec && pt_now.http_date[0] != '\0')
		return;
	pt_now.wall_sec = ts.tv_sec;
	pt_time_http(ts.tv_sec, pt_now.http_date);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(pt_now.log_time, sizeof(pt_now.log_time),
		 "%04d/%02d/%02d %02d:%02d:%02d", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
	snprintf(pt_now.clf_time, sizeof(pt_now.clf_time),
		 "%02d/%s/%04d:%02d:%02d:%02d +0000", tm.tm_mday,
		 months[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
		 tm.tm_sec);
	snprintf(pt_now.iso8601, sizeof(pt_now.iso8601),
		 "%04d-%02d-%02dT%02d:%02d:%02d+00:00", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static int
time_month(const char *p)
{
	for (int i = 0; i < 12; i++)
		if (memcmp(p, months[i], 3) == 0)
			return i;
	return -1;
}

static int
time_num(const char **pp, const char *end, int digits, int *out)
{
	const char *p = *pp;
	int v = 0;

	if (end - p < digits)
		return -1;
	for (int i = 0; i < digits; i++, p++) {
		if (!isdigit((unsigned char)*p))
			return -1;
		v = v * 10 + (*p - '0');
	}
	*pp = p;
	*out = v;
	return 0;
}

static int
time_hms(const char **pp, const char *end, struct tm *tm)
{
	const char *p = *pp;

	if (time_num(&p, end, 2, &tm->tm_hour) < 0 || p >= end || *p++ != ':'
	    || time_num(&p, end, 2, &tm->tm_min) < 0 || p >= end ||
	    *p++ != ':' || time_num(&p, end, 2, &tm->tm_sec) < 0)
		return -1;
	*pp = p;
	return 0;
}

/* Days in month m (0-11) of year y. */
static int
time_mdays(int m, int y)
{
	static const unsigned char mdays[] = { 31, 28, 31, 30, 31, 30,
					       31, 31, 30, 31, 30, 31 };
	int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;

	return mdays[m] + (m == 1 && leap);
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), no TZ involved. */
static int64_t
time_days(int y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

time_t
pt_time_parse_http(const char *p, size_t len)
{
	const char *end = p + len, *comma = memchr(p, ',', len);
	struct tm tm = { 0 };
	int year;

	if (comma != NULL && comma - p == 3) {
		/* IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT */
		p = comma + 1;
		if (p >= end || *p++ != ' ' ||
		    time_num(&p, end, 2, &tm.tm_mday) < 0 || end - p < 5 ||
		    *p++ != ' ' || (tm.tm_mon = time_month(p)) < 0)
			return -1;
		p += 3;
		if (p >= end || *p++ != ' ' || time_num(&p, end, 4, &year) < 0)
			return -1;
	} else if (comma != NULL) {
		/* RFC 850: Sunday, 06-Nov-94 08:49:37 GMT */
		p = comma + 1;
		if (p >= end || *p++ != ' ' ||
		    time_num(&p, end, 2, &tm.tm_mday) < 0 || end - p < 5 ||
		    *p++ != '-' || (tm.tm_mon = time_month(p)) < 0)
			return -1;
		p += 3;
		if (p >= end || *p++ != '-' || time_num(&p, end, 2, &year) < 0)
			return -1;
		year += year < 70 ? 2000 : 1900;
	} else {
		/* asctime: Sun Nov  6 08:49:37 1994 */
		if (len != 24 || p[3] != ' ' ||
		    (tm.tm_mon = time_month(p + 4)) < 0 || p[7] != ' ')
			return -1;
		p += 8;
		if (*p == ' ')
			p++, tm.tm_mday = 0;
		if (time_num(&p, end, end - p > 0 && p[1] == ' ' ? 1 : 2,
			     &tm.tm_mday) < 0 || *p++ != ' ' ||
		    time_hms(&p, end, &tm) < 0 || *p++ != ' ' ||
		    time_num(&p, end, 4, &year) < 0 || p != end)
			return -1;
		goto done;
	}
	if (p >= end || *p++ != ' ' || time_hms(&p, end, &tm) < 0 ||
	    end - p != 4 || memcmp(p, " GMT", 4) != 0)
		return -1;
done:
	/* a day the month does not have ("31 Nov", "29 Feb 2023") is
	 * invalid, not silently moved into the next month */
	if (tm.tm_mday < 1 || tm.tm_mday > time_mdays(tm.tm_mon, year) ||
	    tm.tm_hour > 23 || tm.tm_min > 59 || tm.tm_sec > 60 || year < 1970)
		return -1;
	return (time_t)(time_days(year, tm.tm_mon + 1, tm.tm_mday) * 86400 +
			tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
}
