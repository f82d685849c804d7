/*
 * text.h: what the parser tests share to read their data: whole files,
 * lines, the escapes of the case corpora, the llhttp vectors' notation
 * turned into wire bytes, printable forms for messages, and a seeded
 * generator for mutations. Included by test_http_parse.c and
 * test_http_response.c after unit.h.
 */
#ifndef PT_TEST_TEXT_H
#define PT_TEST_TEXT_H

#include "core.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit.h"

T_UNUSED static char *
t_slurp(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 &&
	    fseek(f, 0, SEEK_SET) == 0) {
		buf = malloc((size_t)n + 1);
		ck_assert_ptr_nonnull(buf);
		if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	fclose(f);
	return buf;
}

/* Next line of [*p, end) without its LF (or CRLF); NULL at the end. */
T_UNUSED static char *
t_line(char **p, char *end, size_t *len)
{
	char *l = *p, *nl;

	if (l >= end)
		return NULL;
	nl = memchr(l, '\n', (size_t)(end - l));
	if (nl == NULL)
		nl = end;
	*len = (size_t)(nl - l);
	if (*len > 0 && l[*len - 1] == '\r')
		(*len)--;
	*p = nl + 1;
	return l;
}

/* Printable form of bytes, for failure messages. */
T_UNUSED static const char *
t_show(const char *s, size_t len, char *out, size_t cap)
{
	size_t o = 0;

	for (size_t i = 0; i < len && o + 5 < cap; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[o++] = (char)c;
		else
			o += (size_t)snprintf(out + o, cap - o, "\\x%02x", c);
	}
	out[o] = '\0';
	return out;
}

T_UNUSED static int
t_hexval(char c)
{
	static const char hex[] = "0123456789abcdef";
	const char *h = c ? strchr(hex, pt_tolower((unsigned char)c)) : NULL;

	return h ? (int)(h - hex) : -1;
}

/*
 * Decode the corpus escapes of s[0..len) into out (room for len bytes):
 * \r \n \t \0 \\ \xHH. A backslash ending the text sets *cont. Returns the
 * decoded length, or -1 for an unknown escape.
 */
T_UNUSED static long
t_unescape(const char *s, size_t len, char *out, int *cont)
{
	size_t o = 0;

	*cont = 0;
	for (size_t i = 0; i < len; i++) {
		int hi, lo;

		if (s[i] != '\\') {
			out[o++] = s[i];
			continue;
		}
		if (++i == len) {
			*cont = 1;
			break;
		}
		switch (s[i]) {
		case 'r': out[o++] = '\r'; break;
		case 'n': out[o++] = '\n'; break;
		case 't': out[o++] = '\t'; break;
		case '0': out[o++] = '\0'; break;
		case '\\': out[o++] = '\\'; break;
		case 'x':
			if (len - i < 3 || (hi = t_hexval(s[i + 1])) < 0 ||
			    (lo = t_hexval(s[i + 2])) < 0)
				return -1;
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
			break;
		default: return -1;
		}
	}
	return (long)o;
}

T_UNUSED static size_t
t_num(const char *v, unsigned line)
{
	char *e;
	unsigned long long n = strtoull(v, &e, 10);

	ck_assert_msg(*v != '\0' && *e == '\0', "corpus:%u: bad number '%s'",
		      line, v);
	return (size_t)n;
}

/*
 * Turn an http block into wire bytes as llhttp's test harness does: lines
 * joined by CRLF, a backslash before a newline joins two lines, escapes
 * \r \n \t \f \xHH and octal \NNN; any other backslash stays.
 */
T_UNUSED static size_t
t_vec_bytes(const char *s, size_t len, char *out)
{
	size_t o = 0, i = 0;

	while (i < len) {
		char c = s[i], n = i + 1 < len ? s[i + 1] : '\0';
		unsigned v = 0, k = 0;

		if (c == '\n') {
			out[o++] = '\r';
			out[o++] = '\n';
			i++;
		} else if (c != '\\' || n == '\0') {
			out[o++] = c;
			i++;
		} else if (n == '\n') {
			i += 2;
		} else if (n == 'r' || n == 'n' || n == 't' || n == 'f') {
			out[o++] = n == 'r'   ? '\r'
				   : n == 'n' ? '\n'
				   : n == 't' ? '\t'
					      : '\f';
			i += 2;
		} else if (n == 'x' && i + 2 < len && t_hexval(s[i + 2]) >= 0) {
			for (i += 2; k < 2 && i < len && t_hexval(s[i]) >= 0;
			     k++, i++)
				v = v * 16 + (unsigned)t_hexval(s[i]);
			out[o++] = (char)v;
		} else if (n >= '0' && n <= '7') {
			for (i++;
			     k < 3 && i < len && s[i] >= '0' && s[i] <= '7';
			     k++, i++)
				v = v * 8 + (unsigned)(s[i] - '0');
			out[o++] = (char)v;
		} else {
			out[o++] = c;
			i++;
		}
	}
	return o;
}

T_UNUSED static int
t_cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

T_UNUSED static uint32_t
t_rand(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return (uint32_t)(*s >> 32);
}

#endif
