/*
 * test_manpage.c: man/portier.conf.5 against the modules' tables, so the
 * documentation cannot drift from the code (STYLE.md, "Docs").
 *
 *   - every setting of every compiled-in module has an ".It Ic NAME" entry,
 *     once, whose value hint matches its type (duration, size, boolean,
 *     number);
 *   - every variable has an ".It Va $NAME" entry; a prefix variable
 *     ($arg_NAME) is documented as "Va $arg_";
 *   - the other way round, when every module of the source tree is
 *     compiled in: every documented setting and variable exists;
 *   - the tables themselves: names unique across modules, as conf.c's
 *     lookup (first match wins) assumes;
 *   - the members of the proxy's blocks (an upstream, its servers, its
 *     health check, its tls: pt_upstream_block, pt_peer_block,
 *     pt_health_block, pt_upstream_tls_block) have
 *     an ".It Cm NAME" entry in the UPSTREAMS section, once, with the value
 *     hint of their type, and every such entry is a member. Block members
 *     are written "Cm", not "Ic", so that they never pass for settings.
 *   - the members of the `tls` group (pt_tls_members) have an ".It Cm
 *     NAME" entry in the SERVERS section, once, with their value hint.
 * A failure lists every offending name at once.
 *
 * The page is read from the source tree (PT_SRCDIR), so a VPATH build
 * finds it.
 */
#include "core.h"
#include "http.h"
#include "module.h"
#include "tls.h"

#include <check.h>

#include "unit.h"
#include <dirent.h>

/*
 * The block tables exist only when the proxy is compiled in: Makefile.am
 * defines PT_TEST_MOD_PROXY then, and test_blocks_documented checks that
 * this agrees with the list of compiled-in modules.
 */
#ifdef PT_TEST_MOD_PROXY
#include "../../modules/proxy/proxy.h"
#endif

#define T_MAN       PT_SRCDIR "/man/portier.conf.5"
#define T_MAX_ITEMS 512

#define T_BLOCKS_SECTION "UPSTREAMS"

/* One name of an ".It" line: "Ic NAME" or "Va NAME" anywhere on it, or
 * "Cm NAME" right after the ".It". */
struct t_item {
	char kind[3]; /* "Ic", "Va" or "Cm" */
	char name[64];
	const char *line;    /* the whole .It line, for the value hint */
	const char *section; /* the ".Sh" it is under ("" before any) */
	unsigned lineno;
	unsigned used;
};

static char *t_text;
static struct t_item t_items[T_MAX_ITEMS];
static unsigned t_nitems;

/* Read the page and collect the names of its ".It" lines. */
static void
t_read_man(void)
{
	FILE *f = fopen(T_MAN, "r");
	long size;
	unsigned lineno = 0;
	const char *section = "";

	ck_assert_msg(f != NULL, "cannot open %s", T_MAN);
	ck_assert_int_eq(fseek(f, 0, SEEK_END), 0);
	size = ftell(f);
	ck_assert_int_gt(size, 0);
	rewind(f);
	t_text = malloc((size_t)size + 1);
	ck_assert_ptr_nonnull(t_text);
	ck_assert_uint_eq(fread(t_text, 1, (size_t)size, f), (size_t)size);
	t_text[size] = '\0';
	fclose(f);

	t_nitems = 0;
	for (char *line = t_text, *next; line != NULL; line = next) {
		char *save = NULL, *tok, *prev = NULL, copy[512];
		unsigned pos = 0;

		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		lineno++;
		if (strncmp(line, ".Sh ", 4) == 0)
			section = line + 4;
		if (strncmp(line, ".It ", 4) != 0)
			continue;
		snprintf(copy, sizeof(copy), "%s", line);
		for (tok = strtok_r(copy, " \t", &save); tok != NULL;
		     prev = tok, tok = strtok_r(NULL, " \t", &save), pos++) {
			struct t_item *it;
			size_t n;

			if (prev == NULL ||
			    (strcmp(prev, "Ic") != 0 &&
			     strcmp(prev, "Va") != 0 &&
			     (pos != 2 || strcmp(prev, "Cm") != 0)))
				continue;
			ck_assert_uint_lt(t_nitems, T_MAX_ITEMS);
			it = &t_items[t_nitems++];
			memcpy(it->kind, prev, 3);
			n = strcspn(tok, ",;");
			snprintf(it->name, sizeof(it->name), "%.*s", (int)n,
				 tok);
			it->line = line;
			it->section = section;
			it->lineno = lineno;
			it->used = 0;
		}
	}
}

static void
t_free_man(void)
{
	free(t_text);
	t_text = NULL;
}

/* Append " <prefix><name>" to a report list. */
static void
t_note(char *list, size_t cap, const char *prefix, const char *name)
{
	size_t n = strlen(list);

	snprintf(list + n, cap - n, " %s%s", prefix, name);
}

static unsigned
t_count(const char *kind, const char *name)
{
	unsigned n = 0;

	for (unsigned i = 0; i < t_nitems; i++)
		if (strcmp(t_items[i].kind, kind) == 0 &&
		    strcmp(t_items[i].name, name) == 0) {
			t_items[i].used++;
			n++;
		}
	return n;
}

static const struct t_item *
t_find(const char *kind, const char *name)
{
	for (unsigned i = 0; i < t_nitems; i++)
		if (strcmp(t_items[i].kind, kind) == 0 &&
		    strcmp(t_items[i].name, name) == 0)
			return &t_items[i];
	return NULL;
}

/* The value hint an entry of a setting of this type must show. */
static const char *
t_hint(unsigned type)
{
	switch (type) {
	case PT_T_FLAG: return "Ar boolean";
	case PT_T_INT: return "Ar number";
	case PT_T_SIZE: return "Ar size";
	case PT_T_DURATION: return "Ar duration";
	default: return NULL;
	}
}

/* Is the module compiled in? */
static int
t_have_module(const char *name)
{
	size_t n = strlen(name);

	for (const char *p = pt_module_names; (p = strstr(p, name)) != NULL;
	     p += n)
		if (p > pt_module_names && p[-1] == ' ' &&
		    (p[n] == ' ' || p[n] == '\0'))
			return 1;
	return 0;
}

/* Are all modules of the source tree compiled in? */
static int
t_all_modules(void)
{
	DIR *d = opendir(PT_SRCDIR "/modules");
	struct dirent *e;
	int all = 1;

	ck_assert_msg(d != NULL, "cannot open %s", PT_SRCDIR "/modules");
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		char name[128];

		if (n < 7 || strncmp(e->d_name, "mod_", 4) != 0 ||
		    strcmp(e->d_name + n - 2, ".c") != 0)
			continue;
		snprintf(name, sizeof(name), "%.*s", (int)(n - 6),
			 e->d_name + 4);
		if (!t_have_module(name))
			all = 0;
	}
	closedir(d);
	return all;
}

START_TEST(test_settings_documented)
{
	char missing[4096] = "", dup[1024] = "", hint[2048] = "";
	unsigned nsettings = 0;

	t_read_man();
	for (unsigned m = 0; pt_modules[m] != NULL; m++) {
		const struct pt_setting *s = pt_modules[m]->settings;
		for (; s != NULL && s->name != NULL; s++) {
			unsigned n = t_count("Ic", s->name);
			const char *h = t_hint(s->type);
			const struct t_item *it = t_find("Ic", s->name);

			nsettings++;
			if (n == 0)
				t_note(missing, sizeof(missing), "", s->name);
			else if (n > 1)
				t_note(dup, sizeof(dup), "", s->name);
			if (it != NULL && h != NULL &&
			    strstr(it->line, h) == NULL)
				t_note(hint, sizeof(hint), "", s->name);
		}
	}
	ck_assert_uint_gt(nsettings, 20);
	ck_assert_msg(missing[0] == '\0',
		      "settings without \".It Ic NAME\" in %s:%s", T_MAN,
		      missing);
	ck_assert_msg(dup[0] == '\0', "settings documented twice:%s", dup);
	ck_assert_msg(hint[0] == '\0',
		      "settings whose entry does not show their type "
		      "(\"Ar duration\", \"Ar size\", ...):%s",
		      hint);
	t_free_man();
}
END_TEST

START_TEST(test_variables_documented)
{
	char missing[4096] = "", dup[1024] = "";
	unsigned nvars = 0;

	t_read_man();
	for (unsigned m = 0; pt_modules[m] != NULL; m++) {
		const struct pt_http_var *v = pt_modules[m]->vars;
		for (; v != NULL && v->name != NULL; v++) {
			char name[80];
			unsigned n;

			/* a prefix is documented "Va $arg_ Ns Ar NAME" */
			snprintf(name, sizeof(name), "$%s", v->name);
			n = t_count("Va", name);
			nvars++;
			if (n == 0)
				t_note(missing, sizeof(missing), "", name);
			else if (n > 1)
				t_note(dup, sizeof(dup), "", name);
		}
	}
	ck_assert_uint_gt(nvars, 20);
	ck_assert_msg(missing[0] == '\0',
		      "variables without \".It Va $NAME\" in %s:%s", T_MAN,
		      missing);
	ck_assert_msg(dup[0] == '\0', "variables documented twice:%s", dup);
	t_free_man();
}
END_TEST

/* What the page documents exists (when no module is left out). */
START_TEST(test_documented_exist)
{
	char stale[2048] = "";

	if (!t_all_modules()) {
		fprintf(stderr,
			"test_manpage: some modules are not compiled "
			"in (%s): not checking that every documented "
			"name exists\n",
			pt_module_names);
		return;
	}
	t_read_man();
	for (unsigned i = 0; i < t_nitems; i++) {
		const struct t_item *it = &t_items[i];
		int found = 0;

		if (strcmp(it->kind, "Cm") == 0)
			continue; /* block members: test_blocks_documented */
		for (unsigned m = 0; pt_modules[m] != NULL && !found; m++) {
			if (strcmp(it->kind, "Ic") == 0) {
				const struct pt_setting *s =
					pt_modules[m]->settings;
				for (; s && s->name && !found; s++)
					found = strcmp(s->name, it->name) == 0;
			} else {
				const struct pt_http_var *v =
					pt_modules[m]->vars;
				for (; v && v->name && !found; v++)
					found = it->name[0] == '$' &&
						strcmp(v->name, it->name + 1) ==
							0;
			}
		}
		if (!found) {
			char where[96];
			snprintf(where, sizeof(where), "%s (line %u)", it->name,
				 it->lineno);
			t_note(stale, sizeof(stale), "", where);
		}
	}
	ck_assert_msg(stale[0] == '\0', "%s documents what no module has:%s",
		      T_MAN, stale);
	t_free_man();
}
END_TEST

/* conf.c gives a name to the first module that has it: names are unique. */
START_TEST(test_tables_unique)
{
	char dup[1024] = "";

	for (unsigned m = 0; pt_modules[m] != NULL; m++) {
		const struct pt_setting *s = pt_modules[m]->settings;
		for (; s != NULL && s->name != NULL; s++) {
			for (unsigned k = 0; k <= m; k++) {
				const struct pt_setting *o =
					pt_modules[k]->settings;
				for (; o != NULL && o->name != NULL && o != s;
				     o++)
					if (strcmp(o->name, s->name) == 0)
						t_note(dup, sizeof(dup), "",
						       s->name);
			}
			ck_assert_msg(s->scopes != 0, "%s: no scope", s->name);
			ck_assert_msg(s->type != PT_T_CUSTOM || s->set != NULL,
				      "%s: custom without a setter", s->name);
		}
		const struct pt_http_var *v = pt_modules[m]->vars;
		for (; v != NULL && v->name != NULL; v++) {
			ck_assert_ptr_nonnull(v->get);
			for (unsigned k = 0; k <= m; k++) {
				const struct pt_http_var *o =
					pt_modules[k]->vars;
				for (; o != NULL && o->name != NULL && o != v;
				     o++)
					if (strcmp(o->name, v->name) == 0)
						t_note(dup, sizeof(dup), "$",
						       v->name);
			}
		}
	}
	ck_assert_msg(dup[0] == '\0', "names defined twice:%s", dup);
}
END_TEST

#ifdef PT_TEST_MOD_PROXY
static const struct pt_setting *const t_blocks[] = {
	pt_upstream_block,
	pt_peer_block,
	pt_health_block,
	pt_upstream_tls_block,
};

/* In how many block tables is name a member? */
static unsigned
t_block_members(const char *name)
{
	unsigned n = 0;

	for (size_t b = 0; b < sizeof(t_blocks) / sizeof(t_blocks[0]); b++)
		for (const struct pt_setting *s = t_blocks[b]; s->name; s++)
			n += strcmp(s->name, name) == 0;
	return n;
}

/* The ".It Cm NAME" entries of the UPSTREAMS section named name. */
static unsigned
t_count_block(const char *name, const struct t_item **first)
{
	unsigned n = 0;

	*first = NULL;
	for (unsigned i = 0; i < t_nitems; i++) {
		const struct t_item *it = &t_items[i];
		if (strcmp(it->kind, "Cm") != 0 ||
		    strcmp(it->section, T_BLOCKS_SECTION) != 0 ||
		    strcmp(it->name, name) != 0)
			continue;
		if (n++ == 0)
			*first = it;
	}
	return n;
}
#endif

/* The members of the server's tls group, each once in SERVERS. */
START_TEST(test_tls_members_documented)
{
	char missing[1024] = "", hint[1024] = "";
	unsigned nmembers = 0;

	t_read_man();
	for (const struct pt_setting *s = pt_tls_members; s->name; s++) {
		const struct t_item *first = NULL;
		const char *h = t_hint(s->type);
		unsigned n = 0;

		nmembers++;
		for (unsigned i = 0; i < t_nitems; i++) {
			const struct t_item *it = &t_items[i];
			if (strcmp(it->kind, "Cm") == 0 &&
			    strcmp(it->section, "SERVERS") == 0 &&
			    strcmp(it->name, s->name) == 0 && n++ == 0)
				first = it;
		}
		if (n != 1)
			t_note(missing, sizeof(missing), "", s->name);
		else if (h != NULL && strstr(first->line, h) == NULL)
			t_note(hint, sizeof(hint), "", s->name);
	}
	ck_assert_uint_ge(nmembers, 10);
	ck_assert_msg(missing[0] == '\0',
		      "tls members without exactly one \".It Cm NAME\" in "
		      "the SERVERS section of %s:%s",
		      T_MAN, missing);
	ck_assert_msg(hint[0] == '\0',
		      "tls members whose entry does not show their type:%s",
		      hint);
	t_free_man();
}
END_TEST

/* The members of the upstreams blocks, both ways. */
START_TEST(test_blocks_documented)
{
#ifdef PT_TEST_MOD_PROXY
	char missing[2048] = "", dup[1024] = "", hint[1024] = "",
	     stale[1024] = "";
	unsigned nmembers = 0, nentries = 0;

	ck_assert_msg(t_have_module("proxy"),
		      "PT_TEST_MOD_PROXY is defined but the proxy module is "
		      "not in \"%s\"",
		      pt_module_names);
	t_read_man();
	for (size_t b = 0; b < sizeof(t_blocks) / sizeof(t_blocks[0]); b++) {
		for (const struct pt_setting *s = t_blocks[b]; s->name; s++) {
			const struct t_item *it;
			unsigned n = t_count_block(s->name, &it);
			const char *h = t_hint(s->type);

			nmembers++;
			if (n == 0)
				t_note(missing, sizeof(missing), "", s->name);
			else if (n > t_block_members(s->name))
				t_note(dup, sizeof(dup), "", s->name);
			if (it != NULL && h != NULL &&
			    strstr(it->line, h) == NULL)
				t_note(hint, sizeof(hint), "", s->name);
		}
	}
	for (unsigned i = 0; i < t_nitems; i++) {
		const struct t_item *it = &t_items[i];
		char where[96];

		if (strcmp(it->kind, "Cm") != 0 ||
		    strcmp(it->section, T_BLOCKS_SECTION) != 0)
			continue;
		nentries++;
		if (t_block_members(it->name) > 0)
			continue;
		snprintf(where, sizeof(where), "%s (line %u)", it->name,
			 it->lineno);
		t_note(stale, sizeof(stale), "", where);
	}
	ck_assert_uint_ge(nmembers, 20);
	ck_assert_uint_ge(nentries, nmembers);
	ck_assert_msg(missing[0] == '\0',
		      "block members without \".It Cm NAME\" in the %s "
		      "section of %s:%s",
		      T_BLOCKS_SECTION, T_MAN, missing);
	ck_assert_msg(dup[0] == '\0', "block members documented twice:%s", dup);
	ck_assert_msg(hint[0] == '\0',
		      "block members whose entry does not show their type "
		      "(\"Ar duration\", \"Ar number\", ...):%s",
		      hint);
	ck_assert_msg(stale[0] == '\0',
		      "%s documents in %s what no block has:%s", T_MAN,
		      T_BLOCKS_SECTION, stale);
	t_free_man();
#else
	ck_assert_msg(!t_have_module("proxy"),
		      "the proxy module is compiled in but PT_TEST_MOD_PROXY "
		      "is not defined (Makefile.am)");
	fprintf(stderr, "test_manpage: the proxy module is not compiled in: "
			"not checking its blocks\n");
#endif
}
END_TEST

/* The reader itself: it sees names on shared lines and prefixes. */
START_TEST(test_reader)
{
	t_read_man();
	ck_assert_ptr_nonnull(t_find("Ic", "worker_processes"));
	ck_assert_ptr_nonnull(t_find("Va", "$remote_port")); /* 2nd on line */
	ck_assert_ptr_nonnull(t_find("Va", "$arg_"));
	ck_assert_ptr_null(t_find("Ic", "default_server")); /* a Cm flag */
	ck_assert_ptr_null(t_find("Ic", "worker_process"));
	/* "Cm" right after ".It" only, with its section */
	ck_assert_ptr_nonnull(t_find("Cm", "default_server"));
	ck_assert_str_eq(t_find("Cm", "default_server")->section, "SERVERS");
	ck_assert_ptr_nonnull(t_find("Cm", "http_502"));
	ck_assert_ptr_null(t_find("Cm", "http_503")); /* 2nd on its line */
	t_free_man();
}
END_TEST

static Suite *
t_suite(void)
{
	Suite *s = suite_create("manpage");
	TCase *tc = tcase_create("all");

	tcase_add_test(tc, test_reader);
	tcase_add_test(tc, test_settings_documented);
	tcase_add_test(tc, test_variables_documented);
	tcase_add_test(tc, test_documented_exist);
	tcase_add_test(tc, test_tables_unique);
	tcase_add_test(tc, test_blocks_documented);
	tcase_add_test(tc, test_tls_members_documented);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(t_suite());
}
