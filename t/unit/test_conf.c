/*
 * test_conf.c: configuration loading through the real path
 * (pt_cycle_load: libconfig, @include, ${VAR}, the settings tables, the
 * modules' postconfig), then what is built from a loaded cycle: location
 * matching, server selection by host name, and templates with variables.
 *
 * Each config is written to a fresh temporary directory; errors are read
 * back from stderr (fd 2 redirected to a file around the load) and
 * compared whole, "file:line: message" included. Most of the coverage is
 * data: tables of (config, expected stderr), (uri, location), (host,
 * server) and (template, request, value).
 *
 * http_core.c is included (h2o style) to reach the static
 * core_find_server(); libportier.a's http_core.o is then not linked.
 *
 */
#include "../../src/http_core.c"

#include <check.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

/* Passing ck_asserts are recorded by Check (a write each): in loops over
 * big tables, only a failure calls it. */
#define T_CHECK(cond, ...)                                                     \
	do {                                                                   \
		if (!(cond))                                                   \
			ck_abort_msg(__VA_ARGS__);                             \
	} while (0)

static char t_dir[PATH_MAX];       /* a fresh temporary directory per test */
static char t_conf[PATH_MAX + 16]; /* t_dir/portier.conf */
static char t_err[16384];          /* what the last load wrote to stderr */

static void
t_setup(void)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(t_dir, sizeof(t_dir), "%s/pt-conf-XXXXXX",
		 tmp && *tmp ? tmp : "/tmp");
	ck_assert_ptr_nonnull(mkdtemp(t_dir));
	snprintf(t_conf, sizeof(t_conf), "%s/portier.conf", t_dir);
	t_err[0] = '\0';
}

static void
t_rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	char path[PATH_MAX + 256];

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		struct stat st;
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
			t_rm_tree(path);
		else
			unlink(path);
	}
	closedir(d);
	rmdir(dir);
}

static void
t_teardown(void)
{
	t_rm_tree(t_dir);
}

/* Write text to t_dir/name (subdirectories must exist). */
static void
t_write(const char *name, const char *text)
{
	char path[PATH_MAX + 256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", t_dir, name);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "cannot write %s", path);
	fputs(text, f);
	ck_assert_int_eq(fclose(f), 0);
}

/* Load a config file, stderr captured into t_err. NULL on failure. */
static struct pt_cycle *
t_load_file(const char *file)
{
	struct pt_cycle_opts o;
	struct pt_cycle *c;
	char errfile[PATH_MAX + 16];
	int saved, fd;
	ssize_t n;

	memset(&o, 0, sizeof(o));
	o.conf_file = file;
	o.prefix = t_dir;
	o.to_stderr = 1;
	o.test = 1;
	snprintf(errfile, sizeof(errfile), "%s/.stderr", t_dir);
	fd = open(errfile, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	ck_assert_int_ge(fd, 0);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	ck_assert_int_ge(saved, 0);
	ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
	c = pt_cycle_load(&o, 1);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	n = pread(fd, t_err, sizeof(t_err) - 1, 0);
	close(fd);
	unlink(errfile);
	t_err[n > 0 ? n : 0] = '\0';
	return c;
}

static struct pt_cycle *
t_load(const char *text)
{
	t_write("portier.conf", text);
	return t_load_file(t_conf);
}

/* want with every "@F" replaced by the config's path, "@D" by its dir. */
static void
t_expand(const char *want, char *out, size_t len)
{
	size_t n = 0;

	for (const char *p = want; *p && n + 1 < len; p++) {
		const char *rep = NULL;
		if (p[0] == '@' && p[1] == 'F')
			rep = t_conf;
		else if (p[0] == '@' && p[1] == 'D')
			rep = t_dir;
		if (rep == NULL) {
			out[n++] = *p;
			continue;
		}
		n += (size_t)snprintf(out + n, len - n, "%s", rep);
		if (n >= len)
			n = len - 1;
		p++;
	}
	out[n] = '\0';
}

/* The config must load, and print nothing (or exactly want_err). */
static struct pt_cycle *
t_ok(const char *text, const char *want_err)
{
	char want[4096];
	struct pt_cycle *c = t_load(text);

	t_expand(want_err ? want_err : "", want, sizeof(want));
	ck_assert_msg(c != NULL, "config refused:\n%s\n-- stderr:\n%s", text,
		      t_err);
	ck_assert_msg(strcmp(t_err, want) == 0,
		      "config:\n%s\n-- stderr:\n%s-- want:\n%s", text, t_err,
		      want);
	return c;
}

/* The config must be refused with exactly want (one line per error). */
static void
t_fails(const char *text, const char *want_err)
{
	char want[4096];
	struct pt_cycle *c = t_load(text);

	t_expand(want_err, want, sizeof(want));
	ck_assert_msg(c == NULL, "config accepted:\n%s", text);
	ck_assert_msg(strcmp(t_err, want) == 0,
		      "config:\n%s\n-- stderr:\n%s-- want:\n%s", text, t_err,
		      want);
}

#define T_SRV "servers = ( { listen = \"127.0.0.1:8080\"; } );\n"

/* ---- errors: a table of (config, exact stderr) ----------------------------
 */

static const struct {
	const char *conf;
	const char *err; /* @F: the config file */
} t_errors[] = {
	/* unknown settings */
	{ "foo = 1;\n" T_SRV, "portier: @F:1: unknown setting \"foo\"\n" },
	{ T_SRV "worker_connection = 512;\n",
	  "portier: @F:2: unknown setting \"worker_connection\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"/\"; rooot = \"/x\"; } ); } );\n",
	  "portier: @F:2: unknown setting \"rooot\"\n" },
	/* all errors of a level are reported, not only the first */
	{ "a = 1;\nb = 2;\n" T_SRV, "portier: @F:1: unknown setting \"a\"\n"
				    "portier: @F:2: unknown setting \"b\"\n" },

	/* wrong scope */
	{ "servers = (\n"
	  "  { listen = \"127.0.0.1:8080\";\n"
	  "    worker_processes = 2; }\n"
	  ");\n",
	  "portier: @F:3: \"worker_processes\" is not allowed in server scope "
	  "(allowed in: main)\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"/\";\n"
	  "    listen = \"127.0.0.1:8081\"; } ); } );\n",
	  "portier: @F:3: \"listen\" is not allowed in location scope "
	  "(allowed in: server)\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\"; path = \"/\"; } );\n",
	  "portier: @F:1: \"path\" is not allowed in server scope "
	  "(allowed in: location)\n" },
	{ "path = \"/\";\n" T_SRV,
	  "portier: @F:1: \"path\" is not allowed in main scope "
	  "(allowed in: location)\n" },
	{ "listen = \"127.0.0.1:8080\";\n" T_SRV,
	  "portier: @F:1: \"listen\" is not allowed in main scope "
	  "(allowed in: server)\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"/\"; max_headers = 10; } ); } );\n",
	  "portier: @F:2: \"max_headers\" is not allowed in location scope "
	  "(allowed in: main, server)\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"/\";\n"
	  "    locations = ( { path = \"/a\"; } ); } ); } );\n",
	  "portier: @F:3: \"locations\" is not allowed in location scope "
	  "(allowed in: server)\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  servers = ( ); } );\n",
	  "portier: @F:2: \"servers\" is not allowed in server scope "
	  "(allowed in: main)\n" },
	{ "return = 404;\n" T_SRV,
	  "portier: @F:1: \"return\" is not allowed in main scope "
	  "(allowed in: server, location)\n" },

	/* wrong type */
	{ "worker_connections = \"many\";\n" T_SRV,
	  "portier: @F:1: \"worker_connections\" expects an integer\n" },
	{ "worker_connections = 1.5;\n" T_SRV,
	  "portier: @F:1: \"worker_connections\" expects an integer\n" },
	{ "worker_connections = \"1024\";\n" T_SRV,
	  "portier: @F:1: \"worker_connections\" expects an integer\n" },
	{ "daemon = 1;\n" T_SRV,
	  "portier: @F:1: \"daemon\" expects true or false\n" },
	{ "daemon = \"off\";\n" T_SRV,
	  "portier: @F:1: \"daemon\" expects true or false\n" },
	{ "user = [ \"a\", \"b\" ];\n" T_SRV,
	  "portier: @F:1: \"user\" expects a string\n" },
	{ "pid_file = 5;\n" T_SRV,
	  "portier: @F:1: \"pid_file\" expects a string\n" },
	{ "error_log = { path = \"x\"; };\n" T_SRV,
	  "portier: @F:1: \"error_log\" expects a string\n" },
	{ "log_level = \"verbose\";\n" T_SRV,
	  "portier: @F:1: \"log_level\" expects one of \"debug\", \"info\", "
	  "\"notice\", \"warn\", \"error\", \"crit\"\n" },
	{ "log_level = 3;\n" T_SRV,
	  "portier: @F:1: \"log_level\" expects one of \"debug\", \"info\", "
	  "\"notice\", \"warn\", \"error\", \"crit\"\n" },
	{ "server_tokens = \"on\";\n" T_SRV,
	  "portier: @F:1: \"server_tokens\" expects true or false\n" },
	{ "client_max_body_size = \"10x\";\n" T_SRV,
	  "portier: @F:1: \"client_max_body_size\" expects a size (\"16k\", "
	  "\"1m\")\n" },
	{ "client_max_body_size = true;\n" T_SRV,
	  "portier: @F:1: \"client_max_body_size\" expects a size (\"16k\", "
	  "\"1m\")\n" },
	{ "keepalive_timeout = \"5 minutes\";\n" T_SRV,
	  "portier: @F:1: \"keepalive_timeout\" expects a duration "
	  "(\"500ms\", \"2s\", \"5m\")\n" },
	{ "keepalive_timeout = -1;\n" T_SRV,
	  "portier: @F:1: \"keepalive_timeout\" expects a duration "
	  "(\"500ms\", \"2s\", \"5m\")\n" },
	{ "keepalive_timeout = 9223372036854775807L;\n" T_SRV,
	  "portier: @F:1: \"keepalive_timeout\" expects a duration "
	  "(\"500ms\", \"2s\", \"5m\")\n" },
	{ "send_timeout = [ \"1s\" ];\n" T_SRV,
	  "portier: @F:1: \"send_timeout\" expects a duration "
	  "(\"500ms\", \"2s\", \"5m\")\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"/\"; index = [ 1, 2 ]; } ); } );\n",
	  "portier: @F:2: \"index\" expects a string or an array of "
	  "strings\n" },
	{ "servers = ( { listen = 8080; } );\n",
	  "portier: @F:1: \"listen\" expects a string or an array of "
	  "strings\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\"; server_name = true; } "
	  ");\n",
	  "portier: @F:1: \"server_name\" expects a string or an array of "
	  "strings\n" },
	{ "mime_types = 1;\n" T_SRV,
	  "portier: @F:1: \"mime_types\" expects a string\n" },

	/* out of range */
	{ "worker_connections = 1;\n" T_SRV,
	  "portier: @F:1: \"worker_connections\": value 1 is out of range "
	  "(2..10000000)\n" },
	{ "worker_connections = 10000001;\n" T_SRV,
	  "portier: @F:1: \"worker_connections\": value 10000001 is out of "
	  "range (2..10000000)\n" },
	{ "worker_processes = 0;\n" T_SRV,
	  "portier: @F:1: \"worker_processes\": value 0 is out of range "
	  "(1..1024)\n" },
	{ "worker_processes = 1025;\n" T_SRV,
	  "portier: @F:1: \"worker_processes\": value 1025 is out of range "
	  "(1..1024)\n" },
	{ "worker_rlimit_nofile = 15;\n" T_SRV,
	  "portier: @F:1: \"worker_rlimit_nofile\": value 15 is out of range "
	  "(16..100000000)\n" },
	{ "large_header_buffer = \"255\";\n" T_SRV,
	  "portier: @F:1: \"large_header_buffer\": value \"255\" is out of "
	  "range (256..1048576)\n" },
	{ "large_header_buffer = \"2m\";\n" T_SRV,
	  "portier: @F:1: \"large_header_buffer\": value \"2m\" is out of "
	  "range (256..1048576)\n" },
	{ "max_headers = 0;\n" T_SRV,
	  "portier: @F:1: \"max_headers\": value 0 is out of range "
	  "(1..10000)\n" },
	{ "keepalive_requests = -1;\n" T_SRV,
	  "portier: @F:1: \"keepalive_requests\": value -1 is out of range "
	  "(0..9223372036854775807)\n" },
	{ "client_max_body_size = -1;\n" T_SRV,
	  "portier: @F:1: \"client_max_body_size\": value -1 is out of range "
	  "(0..9223372036854775807)\n" },

	/* worker_processes: an integer or "auto" */
	{ "worker_processes = \"two\";\n" T_SRV,
	  "portier: @F:1: \"worker_processes\" expects an integer or "
	  "\"auto\"\n" },
	{ "worker_processes = \"Auto\";\n" T_SRV,
	  "portier: @F:1: \"worker_processes\" expects an integer or "
	  "\"auto\"\n" },
	{ "worker_processes = \"\";\n" T_SRV,
	  "portier: @F:1: \"worker_processes\" expects an integer or "
	  "\"auto\"\n" },
	{ "worker_processes = true;\n" T_SRV,
	  "portier: @F:1: \"worker_processes\" expects an integer\n" },

	/* ${VAR} */
	{ "pid_file = \"${PT_TEST_UNSET}/x.pid\";\n" T_SRV,
	  "portier: @F:1: \"${PT_TEST_UNSET}\": environment variable not set "
	  "and no default (use ${NAME:-default})\n" },
	{ T_SRV "\n"
		"error_log = \"a${PT_TEST_SET}b${PT_TEST_UNSET2}\";\n",
	  "portier: @F:3: \"${PT_TEST_UNSET2}\": environment variable not set "
	  "and no default (use ${NAME:-default})\n" },
	{ "user = \"${}\";\n" T_SRV,
	  "portier: @F:1: \"${}\": environment variable not set and no "
	  "default (use ${NAME:-default})\n" },
	{ "user = \"${PT_TEST_SET:default}\";\n" T_SRV,
	  "portier: @F:1: \"${PT_TEST_SET:default}\": environment variable "
	  "not set and no default (use ${NAME:-default})\n" },
	{ "user = \"${PT_TEST_SET\";\n" T_SRV,
	  "portier: @F:1: \"${PT_TEST_SET\": environment variable not set and "
	  "no default (use ${NAME:-default})\n" },
	/* nested in lists and groups too */
	{ "servers = ( { listen = [ \"127.0.0.1:8080\", \"${PT_TEST_UNSET}\" "
	  "]; "
	  "} );\n",
	  "portier: @F:1: \"${PT_TEST_UNSET}\": environment variable not set "
	  "and no default (use ${NAME:-default})\n" },

	/* libconfig syntax errors */
	{ "worker_connections = ;\n" T_SRV, "portier: @F:1: syntax error\n" },
	{ T_SRV "\n\nworker_connections = 10 20;\n",
	  "portier: @F:4: syntax error\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\"; }\n",
	  "portier: @F:2: syntax error\n" },
	/* libconfig notices at the end of the file */
	{ T_SRV "user = \"unterminated;\n", "portier: @F:3: syntax error\n" },
	{ T_SRV "worker_connections = 1;\nworker_connections = 2;\n",
	  "portier: @F:3: duplicate setting name\n" },
	{ T_SRV "@include \"missing.conf\"\n",
	  "portier: @F:2: cannot open include file \"@D/missing.conf\": "
	  "No such file or directory\n" },

	/* servers and listen */
	{ "worker_connections = 512;\n",
	  "portier: @F: no \"servers\" configured\n" },
	{ "servers = ( );\n", "portier: @F: no \"servers\" configured\n" },
	{ "servers = 1;\n", "portier: @F:1: \"servers\" expects a list of "
			    "groups: ( { ... } )\n" },
	{ "servers = { listen = \"127.0.0.1:8080\"; };\n",
	  "portier: @F:1: \"servers\" expects a list of groups: ( { ... } "
	  ")\n" },
	{ "servers = ( 1 );\n",
	  "portier: @F:1: a server must be a group { ... }\n" },
	{ "servers = (\n"
	  "  { listen = \"127.0.0.1:8080\"; },\n"
	  "  { server_name = \"a\"; }\n"
	  ");\n",
	  "portier: @F:3: server without \"listen\"\n" },
	{ "servers = ( { listen = [ ]; } );\n",
	  "portier: @F:1: server without \"listen\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:99999\"; } );\n",
	  "portier: @F:1: \"listen\": invalid port in \"127.0.0.1:99999\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:0\"; } );\n",
	  "portier: @F:1: \"listen\": invalid port in \"127.0.0.1:0\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:\"; } );\n",
	  "portier: @F:1: \"listen\": invalid port in \"127.0.0.1:\"\n" },
	{ "servers = ( { listen = \"300.1.1.1:80\"; } );\n",
	  "portier: @F:1: \"listen\": invalid address \"300.1.1.1:80\" "
	  "(expected IPv4 \"a.b.c.d:port\", IPv6 \"[addr]:port\" or "
	  "\"unix:/path\")\n" },
	{ "servers = ( { listen = \"localhost:80\"; } );\n",
	  "portier: @F:1: \"listen\": invalid address \"localhost:80\" "
	  "(expected IPv4 \"a.b.c.d:port\", IPv6 \"[addr]:port\" or "
	  "\"unix:/path\")\n" },
	{ "servers = ( { listen = \"[::1:80\"; } );\n",
	  "portier: @F:1: \"listen\": invalid address \"[::1:80\"\n" },
	{ "servers = ( { listen = \"[::g]:80\"; } );\n",
	  "portier: @F:1: \"listen\": invalid address \"[::g]:80\" "
	  "(expected IPv4 \"a.b.c.d:port\", IPv6 \"[addr]:port\" or "
	  "\"unix:/path\")\n" },
	{ "servers = ( { listen = \"127.0.0.1:80 foo\"; } );\n",
	  "portier: @F:1: \"listen\": unknown flag \"foo\" (known: "
	  "default_server, reuseport, backlog=N)\n" },
	{ "servers = ( { listen = \"127.0.0.1:80 default\"; } );\n",
	  "portier: @F:1: \"listen\": unknown flag \"default\" (known: "
	  "default_server, reuseport, backlog=N)\n" },
	{ "servers = ( { listen = \"127.0.0.1:80 backlog=0\"; } );\n",
	  "portier: @F:1: \"listen\": invalid \"backlog=0\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:80 backlog=65536\"; } );\n",
	  "portier: @F:1: \"listen\": invalid \"backlog=65536\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:80 backlog=1x\"; } );\n",
	  "portier: @F:1: \"listen\": invalid \"backlog=1x\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:80 backlog=\"; } );\n",
	  "portier: @F:1: \"listen\": invalid \"backlog=\"\n" },
	{ "servers = (\n"
	  "  { listen = \"127.0.0.1:8080 default_server\"; },\n"
	  "  { listen = \"127.0.0.1:8080 default_server\"; }\n"
	  ");\n",
	  "portier: @F:3: \"listen\": 127.0.0.1:8080: \"default_server\" given "
	  "on more than one server (give listen flags on one server only)\n" },
	/* the same address written another way */
	{ "servers = (\n"
	  "  { listen = \"8080 default_server\"; },\n"
	  "  { listen = \"*:8080 default_server\"; }\n"
	  ");\n",
	  "portier: @F:3: \"listen\": 0.0.0.0:8080: \"default_server\" given "
	  "on more than one server (give listen flags on one server only)\n" },
	{ "servers = (\n"
	  "  { listen = \"127.0.0.1:8080 reuseport\"; },\n"
	  "  { listen = [ \"127.0.0.1:8081\",\n"
	  "               \"127.0.0.1:8080 reuseport\" ]; }\n"
	  ");\n",
	  "portier: @F:3: \"listen\": 127.0.0.1:8080: \"reuseport/backlog\" "
	  "given on more than one server (give listen flags on one server "
	  "only)\n" },
	{ "servers = (\n"
	  "  { listen = \"127.0.0.1:8080 backlog=10\"; },\n"
	  "  { listen = \"127.0.0.1:8080 reuseport\"; }\n"
	  ");\n",
	  "portier: @F:3: \"listen\": 127.0.0.1:8080: \"reuseport/backlog\" "
	  "given on more than one server (give listen flags on one server "
	  "only)\n" },
	{ "servers = (\n"
	  "  { listen = \"*:8080\"; },\n"
	  "  { listen = \"127.0.0.1:8080 reuseport\"; }\n"
	  ");\n",
	  "portier: @F:3: \"listen\": 127.0.0.1:8080 shares the socket of a "
	  "wildcard address: give reuseport/backlog there\n" },

	/* server_name */
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  server_name = [ \"ok.test\", \"~^(api\" ]; } );\n",
	  "portier: @F:2: \"server_name\": invalid regex \"^(api\" at offset "
	  "5: missing closing parenthesis\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  server_name = \"www.*.com\"; } );\n",
	  "portier: @F:2: \"server_name\": invalid wildcard \"www.*.com\" "
	  "(use \"*.example.com\" or \"www.example.*\")\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  server_name = \"*example.com\"; } );\n",
	  "portier: @F:2: \"server_name\": invalid wildcard \"*example.com\" "
	  "(use \"*.example.com\" or \"www.example.*\")\n" },

	/* locations */
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = (\n"
	  "    { path = \"/a\"; },\n"
	  "    { path = \"/b\"; },\n"
	  "    { path = \"/a\"; }\n"
	  "  ); } );\n",
	  "portier: @F:5: duplicate location \"/a\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = (\n"
	  "    { path = \"/a\"; },\n"
	  "    { path = \"^~ /a\"; }\n"
	  "  ); } );\n",
	  "portier: @F:4: duplicate location \"/a\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = (\n"
	  "    { path = \"= /a\"; },\n"
	  "    { path = \"/a\"; },\n"
	  "    { path = \"= /a\"; }\n"
	  "  ); } );\n",
	  "portier: @F:5: duplicate location \"= /a\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"~ ^/(a\"; } ); } );\n",
	  "portier: @F:2: \"path\": invalid regex \"^/(a\" at offset 4: "
	  "missing closing parenthesis\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"~* [z-a]\"; } ); } );\n",
	  "portier: @F:2: \"path\": invalid regex \"[z-a]\" at offset 3: range "
	  "out of order in character class\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"~ \"; } ); } );\n",
	  "portier: @F:2: \"path\": empty regex\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"abc\"; } ); } );\n",
	  "portier: @F:2: \"path\": \"abc\" must start with \"/\" (or a "
	  "modifier: \"= \", \"^~ \", \"~ \", \"~* \")\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"=/a\"; } ); } );\n",
	  "portier: @F:2: \"path\": \"=/a\" must start with \"/\" (or a "
	  "modifier: \"= \", \"^~ \", \"~ \", \"~* \")\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = 1; } ); } );\n",
	  "portier: @F:2: \"path\" expects a string\n"
	  "portier: @F:2: location without \"path\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = (\n"
	  "    { root = \"/srv\"; }\n"
	  "  ); } );\n",
	  "portier: @F:3: location without \"path\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = { path = \"/\"; }; } );\n",
	  "portier: @F:2: \"locations\" expects a list of groups: ( { ... } "
	  ")\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( \"/\" ); } );\n",
	  "portier: @F:2: a location must be a group { ... }\n" },

	/* return */
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  return = \"200 hello $nosuch\"; } );\n",
	  "portier: @F:2: unknown variable \"$nosuch\" (write $$ for a literal '$')\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  return = \"302 /$http_\"; } );\n",
	  "portier: @F:2: unknown variable \"$http_\" (write $$ for a literal '$')\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  return = \"abc\"; } );\n",
	  "portier: @F:2: \"return\" expects \"CODE [text or target]\" with "
	  "CODE in 200..599, e.g. \"302 /new\" or \"200 ok\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  return = \"200x\"; } );\n",
	  "portier: @F:2: \"return\" expects \"CODE [text or target]\" with "
	  "CODE in 200..599, e.g. \"302 /new\" or \"200 ok\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  return = \"199 x\"; } );\n",
	  "portier: @F:2: \"return\" expects \"CODE [text or target]\" with "
	  "CODE in 200..599, e.g. \"302 /new\" or \"200 ok\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  return = 600; } );\n",
	  "portier: @F:2: \"return\" expects \"CODE [text or target]\" with "
	  "CODE in 200..599, e.g. \"302 /new\" or \"200 ok\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  return = true; } );\n",
	  "portier: @F:2: \"return\" expects \"CODE [text or target]\" with "
	  "CODE in 200..599, e.g. \"302 /new\" or \"200 ok\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"/\"; return = \"301\"; } ); } );\n",
	  "portier: @F:2: \"return\": 301 needs a target: \"301 /x\"\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"/\"; return = 308; } ); } );\n",
	  "portier: @F:2: \"return\": 308 needs a target: \"308 /x\"\n" },

	/* access_log */
	{ "access_log = { format = \"json\"; };\n" T_SRV,
	  "portier: @F:1: \"access_log\" group without \"path\"\n" },
	{ "access_log = { path = \"a.log\"; level = 1; };\n" T_SRV,
	  "portier: @F:1: unknown setting \"access_log.level\" (known: path, "
	  "format, buffer, flush)\n" },
	{ "access_log = { path = 1; };\n" T_SRV,
	  "portier: @F:1: \"access_log.path\" expects a string\n" },
	{ "access_log = { path = \"a.log\"; format = [ \"x\" ]; };\n" T_SRV,
	  "portier: @F:1: \"access_log.format\" expects a string\n" },
	{ "access_log = { path = \"a.log\"; buffer = \"1x\"; };\n" T_SRV,
	  "portier: @F:1: \"buffer\" expects a size (\"16k\", \"1m\")\n" },
	{ "access_log = { path = \"a.log\"; buffer = \"32m\"; };\n" T_SRV,
	  "portier: @F:1: \"buffer\": value \"32m\" is out of range "
	  "(0..16777216)\n" },
	{ "access_log = { path = \"a.log\"; flush = 0; };\n" T_SRV,
	  "portier: @F:1: \"flush\": value 0s is out of range "
	  "(1ms..3600000ms)\n" },
	/* an integer duration is seconds: the range must say it is in ms */
	{ "access_log = { path = \"a.log\"; flush = 3601; };\n" T_SRV,
	  "portier: @F:1: \"flush\": value 3601s is out of range "
	  "(1ms..3600000ms)\n" },
	{ "access_log = { path = \"a.log\"; flush = \"61m\"; };\n" T_SRV,
	  "portier: @F:1: \"flush\": value \"61m\" is out of range "
	  "(1ms..3600000ms)\n" },
	{ "client_header_timeout = 0;\n" T_SRV,
	  "portier: @F:1: \"client_header_timeout\": value 0s is out of range "
	  "(1ms..9223372036854775807ms)\n" },
	{ "client_header_timeout = \"0ms\";\n" T_SRV,
	  "portier: @F:1: \"client_header_timeout\": value \"0ms\" is out of "
	  "range (1ms..9223372036854775807ms)\n" },
	{ "access_log = { path = \"a.log\"; format = \"$x $status\"; "
	  "};\n" T_SRV,
	  "portier: @F:1: unknown variable \"$x\" (write $$ for a literal '$')\n" },
	{ "access_log = 1;\n" T_SRV,
	  "portier: @F:1: \"access_log\" expects \"off\", a path, or a group "
	  "{ path; format; buffer; flush; }\n" },
	{ "servers = ( { listen = \"127.0.0.1:8080\";\n"
	  "  locations = ( { path = \"/\";\n"
	  "    access_log = { path = \"x.log\"; flush = \"1y\"; }; } ); } );\n",
	  "portier: @F:3: \"flush\" expects a duration (\"500ms\", \"2s\", "
	  "\"5m\")\n" },

	/* other modules' settings */
	{ "sendfile = \"yes\";\n" T_SRV,
	  "portier: @F:1: \"sendfile\" expects true or false\n" },
	{ "root = [ ];\n" T_SRV, "portier: @F:1: \"root\" expects a string\n" },
};

START_TEST(test_errors)
{
	int i = _i;

	ck_assert_int_eq(setenv("PT_TEST_SET", "set", 1), 0);
	unsetenv("PT_TEST_UNSET");
	unsetenv("PT_TEST_UNSET2");
	t_fails(t_errors[i].conf, t_errors[i].err);
}
END_TEST

START_TEST(test_missing_file)
{
	char path[PATH_MAX + 32], want[PATH_MAX + 128];

	snprintf(path, sizeof(path), "%s/absent.conf", t_dir);
	ck_assert_ptr_null(t_load_file(path));
	snprintf(want, sizeof(want),
		 "portier: %s: cannot read: No such file or directory\n", path);
	ck_assert_str_eq(t_err, want);
}
END_TEST

/* Users and groups are looked up when the master runs as root. */
START_TEST(test_user_group)
{
	struct pt_cycle *c;

	if (geteuid() != 0) {
		c = t_ok("user = \"no-such-user-pt\";\n" T_SRV,
			 "portier: warning: \"user\" is ignored: the master "
			 "does not run as root\n");
		pt_cycle_free(c);
		return;
	}
	t_fails(T_SRV "user = \"no-such-user-pt\";\n",
		"portier: @F:2: \"user\": unknown user \"no-such-user-pt\"\n");
	t_fails(T_SRV "user = \"nobody\";\ngroup = \"no-such-group-pt\";\n",
		"portier: @F:3: \"group\": unknown group "
		"\"no-such-group-pt\"\n");
	c = t_ok(T_SRV "user = \"root\";\ngroup = \"root\";\n", NULL);
	ck_assert(c->core->switch_user);
	ck_assert_int_eq(c->core->uid, 0);
	ck_assert_int_eq(c->core->gid, 0);
	pt_cycle_free(c);
	c = t_ok(T_SRV, NULL);
	ck_assert_str_eq(c->core->user, "nobody");
	pt_cycle_free(c);
}
END_TEST

/* ---- values that load -------------------------------------------------- */

static struct pt_http_main_conf *
t_main(struct pt_cycle *c)
{
	return c->main_conf[PT_HTTP_CORE_INDEX];
}

static struct pt_http_loc_conf *
t_loc(void **loc_conf)
{
	return loc_conf[PT_HTTP_CORE_INDEX];
}

static struct pt_http_srv_conf *
t_srv(void **srv_conf)
{
	return srv_conf[PT_HTTP_CORE_INDEX];
}

START_TEST(test_values)
{
	struct pt_cycle *c =
		t_ok("worker_processes = 3;\n"
		     "worker_connections = 2;\n"
		     "worker_shutdown_timeout = \"1h\";\n"
		     "client_max_body_size = \"16k\";\n"
		     "keepalive_timeout = \"1m30s\";\n"
		     "send_timeout = 30;\n"
		     "large_header_buffer = \"1k\";\n"
		     "client_header_timeout = \"500ms\";\n"
		     "log_level = \"warn\";\n"
		     "daemon = false;\n"
		     "pid_file = \"run/p.pid\";\n"
		     "servers = (\n"
		     "  { listen = \"127.0.0.1:8080\";\n"
		     "    client_max_body_size = \"2M\";\n"
		     "    max_headers = 7;\n"
		     "    locations = (\n"
		     "      { path = \"/a\"; client_max_body_size = 0;\n"
		     "        keepalive_timeout = 0; },\n"
		     "      { path = \"/b\"; }\n"
		     "    ); },\n"
		     "  { listen = \"127.0.0.1:8081\"; }\n"
		     ");\n",
		     NULL);
	struct pt_http_main_conf *mc = t_main(c);
	struct pt_http_server *s0 = mc->servers[0], *s1 = mc->servers[1];
	char want[PATH_MAX + 32];

	ck_assert_int_eq(c->core->worker_processes, 3);
	ck_assert_uint_eq(pt_cycle_workers(c), 3);
	ck_assert_int_eq(c->core->worker_connections, 2);
	ck_assert_int_eq(c->core->worker_shutdown_timeout, 3600000);
	ck_assert_int_eq(c->core->log_level, PT_LOG_WARN);
	ck_assert_int_eq(c->core->daemon, 0);
	snprintf(want, sizeof(want), "%s/run/p.pid", t_dir);
	ck_assert_str_eq(c->core->pid_file, want);
	ck_assert_uint_eq(mc->nservers, 2);
	/* main level */
	ck_assert_int_eq(t_loc(c->loc_conf)->client_max_body_size, 16384);
	ck_assert_int_eq(t_loc(c->loc_conf)->keepalive_timeout, 90000);
	ck_assert_int_eq(t_loc(c->loc_conf)->send_timeout, 30000);
	ck_assert_int_eq(t_srv(c->srv_conf)->large_header_buffer, 1024);
	ck_assert_int_eq(t_srv(c->srv_conf)->client_header_timeout, 500);
	/* server 0 overrides some, inherits the rest */
	ck_assert_int_eq(t_loc(s0->loc_conf)->client_max_body_size, 2097152);
	ck_assert_int_eq(t_loc(s0->loc_conf)->keepalive_timeout, 90000);
	ck_assert_int_eq(t_srv(s0->srv_conf)->max_headers, 7);
	ck_assert_int_eq(t_srv(s0->srv_conf)->large_header_buffer, 1024);
	ck_assert_int_eq(t_srv(s0->srv_conf)->client_header_timeout, 500);
	/* its locations: /a sets 0 (a value, not "unset"), /b inherits */
	ck_assert_uint_eq(s0->nprefix, 2);
	ck_assert_str_eq(s0->prefix[0]->name, "/a");
	ck_assert_int_eq(t_loc(s0->prefix[0]->loc_conf)->client_max_body_size,
			 0);
	ck_assert_int_eq(t_loc(s0->prefix[0]->loc_conf)->keepalive_timeout, 0);
	ck_assert_int_eq(t_loc(s0->prefix[1]->loc_conf)->client_max_body_size,
			 2097152);
	ck_assert_int_eq(t_loc(s0->prefix[1]->loc_conf)->send_timeout, 30000);
	ck_assert_str_eq(t_loc(s0->prefix[1]->loc_conf)->default_type,
			 "text/plain");
	/* server 1 inherits main, and the defaults */
	ck_assert_int_eq(t_loc(s1->loc_conf)->client_max_body_size, 16384);
	ck_assert_int_eq(t_srv(s1->srv_conf)->max_headers, 100);
	ck_assert_int_eq(t_loc(s1->loc_conf)->client_body_timeout, 60000);
	ck_assert_int_eq(t_loc(s1->loc_conf)->keepalive_requests, 1000);
	ck_assert_int_eq(t_loc(s1->loc_conf)->server_tokens, 0);
	/* listeners: not bound by a load */
	ck_assert_uint_eq(c->nlisteners, 2);
	ck_assert_str_eq(c->listeners[0].text, "127.0.0.1:8080");
	ck_assert_int_eq(c->listeners[0].io.fd, -1);
	ck_assert_int_eq(c->listeners[0].backlog, 511);
	pt_cycle_free(c);
}
END_TEST

START_TEST(test_defaults)
{
	struct pt_cycle *c = t_ok(T_SRV, NULL);

	ck_assert_int_eq(c->core->worker_processes, 1);
	ck_assert_int_eq(c->core->worker_connections, 1024);
	ck_assert_int_eq(c->core->log_level, PT_LOG_NOTICE);
	ck_assert_int_eq(c->core->daemon, 1);
	ck_assert_int_eq(t_loc(c->loc_conf)->client_max_body_size, 1048576);
	ck_assert_int_eq(t_loc(c->loc_conf)->keepalive_timeout, 75000);
	ck_assert_int_eq(t_srv(c->srv_conf)->large_header_buffer, 8192);
	ck_assert_int_eq(t_srv(c->srv_conf)->client_header_timeout, 60000);
	pt_cycle_free(c);
}
END_TEST

START_TEST(test_worker_processes_auto)
{
	struct pt_cycle *c = t_ok("worker_processes = \"auto\";\n" T_SRV, NULL);
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	/* resolved once at load: the reuseport sockets built for this count
	 * and the workers started must agree */
	ck_assert_int_eq(c->core->worker_processes, n > 0 ? n : 1);
	ck_assert_uint_eq(pt_cycle_workers(c), n > 0 ? (unsigned)n : 1);
	pt_cycle_free(c);
}
END_TEST

START_TEST(test_listen_flags)
{
	struct pt_cycle *c = t_ok(
		"worker_processes = 3;\n"
		"servers = (\n"
		"  { listen = [ \"127.0.0.1:8080 reuseport backlog=100\",\n"
		"               \"[::1]:8080\", \"unix:/tmp/pt.sock\" ]; },\n"
		"  { listen = \"127.0.0.1:8080 default_server\"; },\n"
		"  { listen = \"8081  backlog=7 \"; }\n"
		");\n",
		NULL);
	unsigned reuse = 0;

	/* three copies of the reuseport socket, one per worker */
	ck_assert_uint_eq(c->nlisteners, 3 + 1 + 1 + 1);
	for (unsigned i = 0; i < c->nlisteners; i++) {
		struct pt_listener *ls = &c->listeners[i];
		if (strcmp(ls->text, "127.0.0.1:8080") == 0) {
			ck_assert(ls->reuseport);
			ck_assert_int_eq(ls->slot, (int)reuse);
			ck_assert_int_eq(ls->backlog, 100);
			reuse++;
		} else if (strcmp(ls->text, "0.0.0.0:8081") == 0) {
			ck_assert_int_eq(ls->backlog, 7);
			ck_assert(ls->wildcard);
		} else if (strcmp(ls->text, "unix:/tmp/pt.sock") == 0) {
			ck_assert(ls->unix_path);
		} else {
			ck_assert_str_eq(ls->text, "[::1]:8080");
			ck_assert_int_eq(ls->slot, -1);
		}
	}
	ck_assert_uint_eq(reuse, 3);
	pt_cycle_free(c);
}
END_TEST

/* ---- environment and includes ------------------------------------------- */

START_TEST(test_env)
{
	struct pt_cycle *c;
	char want[PATH_MAX + 64];

	ck_assert_int_eq(setenv("PT_TEST_PORT", "8181", 1), 0);
	ck_assert_int_eq(setenv("PT_TEST_EMPTY", "", 1), 0);
	unsetenv("PT_TEST_UNSET");
	c = t_ok("pid_file = \"${PT_TEST_UNSET:-logs}/${PT_TEST_PORT}.pid\";\n"
		 "error_log = \"x${PT_TEST_EMPTY:-default}y\";\n"
		 "default_type = \"${PT_TEST_UNSET:-}\";\n"
		 "servers = ( {\n"
		 "  listen = [ \"127.0.0.1:${PT_TEST_PORT}\",\n"
		 "             \"127.0.0.1:${PT_TEST_UNSET:-9090}\" ];\n"
		 "  return = \"200 $host ${PT_TEST_PORT}$ $$\";\n"
		 "} );\n",
		 NULL);
	ck_assert_str_eq(c->listeners[0].text, "127.0.0.1:8181");
	ck_assert_str_eq(c->listeners[1].text, "127.0.0.1:9090");
	snprintf(want, sizeof(want), "%s/logs/8181.pid", t_dir);
	ck_assert_str_eq(c->core->pid_file, want);
	/* set but empty counts as set (unlike the shell's ":-") */
	snprintf(want, sizeof(want), "%s/xy", t_dir);
	ck_assert_str_eq(c->core->error_log, want);
	pt_cycle_free(c);
}
END_TEST

START_TEST(test_expand_env)
{
	static const struct {
		const char *in, *out; /* out NULL: error */
		int bad;              /* offset of the bad reference */
	} cases[] = {
		{ "", "", 0 },
		{ "plain", "plain", 0 },
		{ "$", "$", 0 },
		{ "$host", "$host", 0 },
		{ "{PT_TEST_SET}", "{PT_TEST_SET}", 0 },
		{ "${PT_TEST_SET}", "set", 0 },
		{ "<${PT_TEST_SET}${PT_TEST_SET}>", "<setset>", 0 },
		{ "${PT_TEST_UNSET:-d}", "d", 0 },
		{ "${PT_TEST_UNSET:-}", "", 0 },
		{ "${PT_TEST_UNSET:-a:-b}", "a:-b", 0 },
		{ "${PT_TEST_SET:-d}", "set", 0 },
		{ "${PT_TEST_LONG}${PT_TEST_LONG}", NULL, -1 }, /* see below */
		{ "${PT_TEST_UNSET}", NULL, 0 },
		{ "ab${PT_TEST_UNSET}", NULL, 2 },
		{ "${PT_TEST_SET}${PT_TEST_UNSET}", NULL, 14 },
		{ "${}", NULL, 0 },
		{ "${:-x}", NULL, 0 },
		{ "${PT_TEST_SET:x}", NULL, 0 },
		{ "${PT_TEST_SET", NULL, 0 },
		{ "$${PT_TEST_SET}", "$set", 0 },
	};
	char longv[3000];

	memset(longv, 'v', sizeof(longv) - 1);
	longv[sizeof(longv) - 1] = '\0';
	ck_assert_int_eq(setenv("PT_TEST_SET", "set", 1), 0);
	ck_assert_int_eq(setenv("PT_TEST_LONG", longv, 1), 0);
	unsetenv("PT_TEST_UNSET");
	for (size_t i = 0; i < PT_ARRAY_SIZE(cases); i++) {
		const char *bad = NULL;
		char *out = pt_conf_expand_env(cases[i].in, &bad);

		if (cases[i].bad == -1) {
			/* growth well past the input's length */
			ck_assert_ptr_nonnull(out);
			ck_assert_uint_eq(strlen(out), 2 * strlen(longv));
			ck_assert(strspn(out, "v") == strlen(out));
		} else if (cases[i].out == NULL) {
			ck_assert_msg(out == NULL, "\"%s\" expanded to \"%s\"",
				      cases[i].in, out);
			ck_assert_ptr_eq(bad, cases[i].in + cases[i].bad);
		} else {
			ck_assert_msg(out != NULL &&
					      strcmp(out, cases[i].out) == 0,
				      "\"%s\" expanded to \"%s\"", cases[i].in,
				      out ? out : "(error)");
		}
		free(out);
	}
}
END_TEST

START_TEST(test_include)
{
	struct pt_cycle *c;
	char cwd[PATH_MAX], sub[PATH_MAX + 16];

	/* relative to the config's directory, not to the cwd */
	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	ck_assert_int_eq(chdir("/"), 0);
	snprintf(sub, sizeof(sub), "%s/conf.d", t_dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	t_write("other.conf", "worker_connections = 512;\n"
			      "@include \"conf.d/servers.conf\"\n");
	t_write("conf.d/servers.conf",
		"servers = ( { listen = \"127.0.0.1:8080\"; } );\n");
	c = t_ok("@include \"other.conf\"\n"
		 "worker_processes = 2;\n",
		 NULL);
	ck_assert_int_eq(c->core->worker_connections, 512);
	ck_assert_int_eq(c->core->worker_processes, 2);
	ck_assert_uint_eq(t_main(c)->nservers, 1);
	pt_cycle_free(c);

	/* an error in an included file names that file and its line */
	t_write("other.conf", "worker_connections = 512;\n"
			      "\n"
			      "bogus = 1;\n");
	t_fails("@include \"other.conf\"\n" T_SRV,
		"portier: @D/other.conf:3: unknown setting \"bogus\"\n");
	t_write("other.conf", "worker_connections = 512\n"
			      "worker_processes = ;\n");
	t_fails("@include \"other.conf\"\n" T_SRV,
		"portier: @D/other.conf:2: syntax error\n");
	/* nested, in a subdirectory, and in a module's check */
	t_write("other.conf", "@include \"conf.d/servers.conf\"\n");
	t_write("conf.d/servers.conf",
		"servers = (\n  { listen = \"127.0.0.1:8080\"; },\n"
		"  { server_name = \"x\"; } );\n");
	t_fails("worker_processes = 1;\n@include \"other.conf\"\n",
		"portier: @D/conf.d/servers.conf:3: server without "
		"\"listen\"\n");
	t_write("conf.d/servers.conf", "@include \"conf.d/missing.conf\"\n");
	t_fails("@include \"other.conf\"\n",
		"portier: @D/conf.d/servers.conf:1: cannot open include "
		"file \"@D/conf.d/missing.conf\": No such file or directory\n");
	ck_assert_int_eq(chdir(cwd), 0);
}
END_TEST

/* A config named by a relative path works from the cwd it is relative to. */
START_TEST(test_include_relative_conf)
{
	struct pt_cycle *c;
	char cwd[PATH_MAX], *base = strrchr(t_dir, '/');

	ck_assert_ptr_nonnull(getcwd(cwd, sizeof(cwd)));
	*base = '\0';
	ck_assert_int_eq(chdir(t_dir), 0);
	*base = '/';
	t_write("other.conf", T_SRV);
	t_write("portier.conf", "@include \"other.conf\"\n");
	{
		char rel[PATH_MAX];
		snprintf(rel, sizeof(rel), "%s/portier.conf", base + 1);
		c = t_load_file(rel);
	}
	ck_assert_msg(c != NULL, "%s", t_err);
	ck_assert_uint_eq(t_main(c)->nservers, 1);
	pt_cycle_free(c);
	ck_assert_int_eq(chdir(cwd), 0);
}
END_TEST

/* Wildcard includes: sorted, an empty match is fine, positions exact. */
START_TEST(test_include_glob)
{
	struct pt_cycle *c;
	char sub[PATH_MAX + 16];

	snprintf(sub, sizeof(sub), "%s/conf.d", t_dir);
	ck_assert_int_eq(mkdir(sub, 0700), 0);
	t_write("conf.d/b.conf", T_SRV);
	t_write("conf.d/a.conf", "worker_connections = 100;\n");
	t_write("conf.d/ignored.txt", "bogus = 1;\n");
	c = t_ok("@include \"conf.d/*.conf\"\n"
		 "@include \"none.d/*.conf\"\n"
		 "worker_processes = 3;\n",
		 NULL);
	ck_assert_int_eq(c->core->worker_connections, 100);
	ck_assert_int_eq(c->core->worker_processes, 3);
	ck_assert_uint_eq(t_main(c)->nservers, 1);
	pt_cycle_free(c);

	/* the second file of the match, second line */
	t_write("conf.d/c.conf", "\nbogus = 1;\n");
	t_fails("@include \"conf.d/*.conf\"\n",
		"portier: @D/conf.d/c.conf:2: unknown setting \"bogus\"\n");
	/* a line after the included ones keeps its own number */
	t_write("conf.d/c.conf", "\n");
	t_fails("@include \"conf.d/*.conf\"\n\nnope = 2;\n",
		"portier: @F:3: unknown setting \"nope\"\n");
	/* a loop */
	t_write("loop.conf", "@include \"loop.conf\"\n");
	t_fails("@include \"loop.conf\"\n" T_SRV,
		"portier: @D/loop.conf:1: @include nested too deep (a "
		"loop?)\n");
	/* not a directive libconfig or we can read */
	t_fails(T_SRV "@include conf.d/a.conf\n",
		"portier: @F:2: invalid @include (expected @include \"file\" "
		"on a line of its own)\n");
}
END_TEST

/* An @include with an absolute path is taken as it is. */
START_TEST(test_include_absolute)
{
	struct pt_cycle *c;
	char text[PATH_MAX + 64];

	t_write("abs.conf", T_SRV);
	snprintf(text, sizeof(text), "@include \"%s/abs.conf\"\n", t_dir);
	c = t_ok(text, NULL);
	ck_assert_uint_eq(t_main(c)->nservers, 1);
	pt_cycle_free(c);
}
END_TEST

/* Warnings do not refuse the config. */
START_TEST(test_warnings)
{
	struct pt_cycle *c = t_ok(
		"servers = (\n"
		"  { listen = \"127.0.0.1:8080\"; server_name = \"a.test\"; "
		"},\n"
		"  { listen = \"127.0.0.1:8080\"; server_name = \"A.test\"; }\n"
		");\n",
		"portier: @F:3: warning: conflicting server name \"A.test\" on "
		"this address, ignored\n");

	pt_cycle_free(c);
}
END_TEST

/*
 * A copy of a request's string, as the matchers get it. Under ASan it is
 * exactly len bytes, so that a read past the end is caught. Otherwise (for
 * valgrind) 16 initialised bytes follow: the PCRE2 JIT's SIMD scans load
 * aligned 16-byte words that may extend past the subject (harmless: they
 * never cross a page), which valgrind reports as a use of uninitialised
 * bytes; in the server the subject is always inside a larger buffer.
 */
#ifdef __SANITIZE_ADDRESS__
#define T_SLACK 0
#else
#define T_SLACK 16
#endif

static char *
t_subject(const char *s, size_t len)
{
	char *d = malloc(len + T_SLACK + 1);

	ck_assert_ptr_nonnull(d);
	memcpy(d, s, len);
	memset(d + len, '#', T_SLACK + 1);
	return d;
}

/* ---- location matching ------------------------------------------------------
 */

static const char t_loc_conf[] =
	"servers = (\n"
	"  { listen = \"127.0.0.1:8080\";\n"
	"    locations = (\n"
	"      { path = \"= /\"; },\n"
	"      { path = \"/\"; },\n"
	"      { path = \"/docs/\"; },\n"
	"      { path = \"/docs/api/\"; },\n"
	"      { path = \"= /docs/api/\"; },\n"
	"      { path = \"^~ /static/\"; },\n"
	"      { path = \"/static/img/\"; },\n"
	"      { path = \"~ \\\\.php$\"; },\n"
	"      { path = \"~* \\\\.(png|jpg)$\"; },\n"
	"      { path = \"/images/\"; },\n"
	"      { path = \"~ ^/images/.*\\\\.gif$\"; },\n"
	"      { path = \"= /exact\"; },\n"
	"      { path = \"/exact/\"; },\n"
	"      { path = \"~ ^/docs/api/v[0-9]+/\"; },\n"
	"      { path = \"~ ^/order\"; },\n"
	"      { path = \"~ order$\"; },\n"
	"      { path = \"^~ /stop\"; },\n"
	"      { path = \"/stop/longer/\"; }\n"
	"    ); },\n"
	"  { listen = \"127.0.0.1:8080\";\n"
	"    locations = (\n"
	"      { path = \"/only/\"; },\n"
	"      { path = \"~* ^/CI/\"; }\n"
	"    ); },\n"
	"  { listen = \"127.0.0.1:8080\"; }\n"
	");\n";

static const struct {
	unsigned server;
	const char *uri;
	const char *loc; /* NULL: none, the server's own settings */
} t_locs[] = {
	{ 0, "/", "= /" },
	{ 0, "/index.html", "/" },
	{ 0, "/docs", "/" },
	{ 0, "/docs/", "/docs/" },
	{ 0, "/docs/intro", "/docs/" },
	{ 0, "/docs/api/", "= /docs/api/" }, /* exact beats prefix */
	{ 0, "/docs/api/x", "/docs/api/" },  /* longest prefix */
	{ 0, "/docs/api/v2/x", "~ ^/docs/api/v[0-9]+/" },
	{ 0, "/docs/api/v/x", "/docs/api/" },
	{ 0, "/docs/a.php", "~ \\.php$" }, /* regex beats prefix */
	{ 0, "/static/", "^~ /static/" },
	{ 0, "/static/a.php", "^~ /static/" }, /* ^~ stops regexes */
	{ 0, "/static/a.png", "^~ /static/" },
	{ 0, "/static/img/a.png", "~* \\.(png|jpg)$" }, /* ^~ not longest */
	{ 0, "/static/img/a.txt", "/static/img/" },
	{ 0, "/staticx/a.php", "~ \\.php$" },
	{ 0, "/a.php", "~ \\.php$" },
	{ 0, "/a.PHP", "/" }, /* ~ is case-sensitive */
	{ 0, "/a.php.txt", "/" },
	{ 0, "/a.PNG", "~* \\.(png|jpg)$" }, /* ~* is not */
	{ 0, "/a.Jpg", "~* \\.(png|jpg)$" },
	{ 0, "/images/a.gif", "~ ^/images/.*\\.gif$" },
	{ 0, "/images/a.png", "~* \\.(png|jpg)$" }, /* first regex in order */
	{ 0, "/images/a.txt", "/images/" },
	{ 0, "/IMAGES/A.GIF", "/" }, /* prefixes are exact bytes */
	{ 0, "/exact", "= /exact" },
	{ 0, "/exact/", "/exact/" },
	{ 0, "/exactly", "/" },
	{ 0, "/exact/x.php", "~ \\.php$" },
	{ 0, "/order", "~ ^/order" }, /* both match: the first */
	{ 0, "/x/order", "~ order$" },
	{ 0, "/stop", "^~ /stop" },
	{ 0, "/stopper.php", "^~ /stop" }, /* a prefix, not a segment */
	{ 0, "/stop/longer/x.php", "~ \\.php$" },
	{ 0, "/stop/longer/x", "/stop/longer/" },
	{ 1, "/", NULL },
	{ 1, "/only", NULL },
	{ 1, "/only/", "/only/" },
	{ 1, "/only/x", "/only/" },
	{ 1, "/ci/x", "~* ^/CI/" },
	{ 1, "/other", NULL },
	{ 2, "/", NULL },
	{ 2, "/anything", NULL },
};

START_TEST(test_locations)
{
	struct pt_cycle *c = t_ok(t_loc_conf, NULL);
	struct pt_http_main_conf *mc = t_main(c);

	ck_assert_uint_eq(mc->nservers, 3);
	/* the tables: sorted by kind, prefixes longest first */
	ck_assert_uint_eq(mc->servers[0]->nexact, 3);
	ck_assert_uint_eq(mc->servers[0]->nregex, 6);
	ck_assert_uint_eq(mc->servers[0]->nprefix, 9);
	for (unsigned i = 1; i < mc->servers[0]->nprefix; i++)
		ck_assert_uint_ge(mc->servers[0]->prefix[i - 1]->prefix.len,
				  mc->servers[0]->prefix[i]->prefix.len);
	for (size_t i = 0; i < PT_ARRAY_SIZE(t_locs); i++) {
		struct pt_http_request r;
		struct pt_http_server *srv = mc->servers[t_locs[i].server];
		size_t len = strlen(t_locs[i].uri);
		char *uri = t_subject(t_locs[i].uri, len);

		memset(&r, 0, sizeof(r));
		r.server = srv;
		r.uri.data = uri;
		r.uri.len = len;
		T_CHECK(pt_http_find_location(&r) == PT_OK, "uri %s",
			t_locs[i].uri);
		if (t_locs[i].loc == NULL) {
			T_CHECK(r.location == NULL,
				"server %u uri \"%s\": location \"%s\", want "
				"none",
				t_locs[i].server, t_locs[i].uri,
				r.location->name);
			T_CHECK(r.loc_conf == srv->loc_conf,
				"uri \"%s\": not the server's conf",
				t_locs[i].uri);
		} else {
			T_CHECK(r.location != NULL &&
					strcmp(r.location->name,
					       t_locs[i].loc) == 0,
				"server %u uri \"%s\": location \"%s\", want "
				"\"%s\"",
				t_locs[i].server, t_locs[i].uri,
				r.location ? r.location->name : "(none)",
				t_locs[i].loc);
			T_CHECK(r.loc_conf == r.location->loc_conf,
				"uri \"%s\": not the location's conf",
				t_locs[i].uri);
			T_CHECK(t_loc(r.loc_conf)->location == r.location,
				"uri \"%s\": conf of another location",
				t_locs[i].uri);
		}
		free(uri);
	}
	pt_cycle_free(c);
}
END_TEST

/* ---- server selection -------------------------------------------------------
 */

static const char t_names_conf[] =
	"servers = (\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"first.test\"; },\n"
	"  { listen = \"127.0.0.1:8081\";\n"
	"    server_name = [ \"example.com\", \"www.example.com\" ]; },\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"*.example.com\"; },\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"*.api.example.com\"; "
	"},\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"www.example.*\"; },\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"www.*\"; },\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"~^api\\\\d+\\\\.\"; "
	"},\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"~^(www|api)\\\\d\"; "
	"},\n"
	"  { listen = \"127.0.0.1:8081 default_server\";\n"
	"    server_name = \"default.test\"; },\n"
	"  { listen = \"127.0.0.1:8081\"; server_name = \"Mixed.Case.Test\"; "
	"},\n"
	"  { listen = [ \"127.0.0.1:8082\", \"127.0.0.1:8081\" ];\n"
	"    server_name = \"other.test\"; },\n"
	"  { listen = \"127.0.0.1:8082\"; server_name = \"second.test\"; }\n"
	");\n";

static const struct {
	const char *addr, *host, *server; /* server: its first name */
} t_hosts[] = {
	{ "127.0.0.1:8081", "first.test", "first.test" },
	{ "127.0.0.1:8081", "example.com", "example.com" },
	{ "127.0.0.1:8081", "www.example.com", "example.com" }, /* exact */
	{ "127.0.0.1:8081", "a.example.com", "*.example.com" },
	{ "127.0.0.1:8081", "a.b.example.com", "*.example.com" },
	{ "127.0.0.1:8081", "x.api.example.com", "*.api.example.com" },
	{ "127.0.0.1:8081", "api.example.com", "*.example.com" },
	{ "127.0.0.1:8081", "api12.example.com", "*.example.com" },
	{ "127.0.0.1:8081", "wwwexample.com", "default.test" },
	{ "127.0.0.1:8081", "www.example.org", "www.example.*" },
	{ "127.0.0.1:8081", "www.example.co.uk", "www.example.*" },
	{ "127.0.0.1:8081", "www.other.org", "www.*" },
	{ "127.0.0.1:8081", "www.example", "www.*" },
	{ "127.0.0.1:8081", "www1.test", "~^(www|api)\\d" },
	{ "127.0.0.1:8081", "api12.internal", "~^api\\d+\\." },
	{ "127.0.0.1:8081", "api1x.internal", "~^(www|api)\\d" },
	{ "127.0.0.1:8081", "apix.internal", "default.test" },
	{ "127.0.0.1:8081", "mixed.case.test", "Mixed.Case.Test" },
	{ "127.0.0.1:8081", "other.test", "other.test" },
	{ "127.0.0.1:8081", "second.test", "default.test" }, /* other addr */
	{ "127.0.0.1:8081", "nothing.test", "default.test" },
	{ "127.0.0.1:8081", "", "default.test" },
	{ "127.0.0.1:8081", "example.com.evil", "default.test" },
	{ "127.0.0.1:8081", "first.tes", "default.test" },
	{ "127.0.0.1:8081", "first.testx", "default.test" },
	{ "127.0.0.1:8082", "second.test", "second.test" },
	{ "127.0.0.1:8082", "other.test", "other.test" },
	/* without default_server, the first server listing the address */
	{ "127.0.0.1:8082", "first.test", "other.test" },
	{ "127.0.0.1:8082", "", "other.test" },
};

static const struct pt_http_addr *
t_find_addr(struct pt_cycle *c, const char *text)
{
	for (unsigned i = 0; i < c->nlisteners; i++) {
		const struct pt_http_port *port = c->listeners[i].ctx;
		for (unsigned j = 0; j < port->naddrs; j++) {
			char buf[PT_ADDR_TEXT];
			pt_addr_text(&port->addrs[j].addr.u.sa,
				     port->addrs[j].addr.len, buf, sizeof(buf));
			if (strcmp(buf, text) == 0)
				return &port->addrs[j];
		}
	}
	ck_abort_msg("no address %s", text);
	return NULL;
}

START_TEST(test_server_names)
{
	struct pt_cycle *c = t_ok(t_names_conf, NULL);

	for (size_t i = 0; i < PT_ARRAY_SIZE(t_hosts); i++) {
		const struct pt_http_addr *ha = t_find_addr(c, t_hosts[i].addr);
		size_t len = strlen(t_hosts[i].host);
		char *host = t_subject(t_hosts[i].host, len);
		struct pt_str h = { host, len };
		struct pt_http_server *srv;
		const char *name;

		srv = core_find_server(ha, h);
		ck_assert_ptr_nonnull(srv);
		name = t_srv(srv->srv_conf)->server_name.items[0];
		T_CHECK(strcmp(name, t_hosts[i].server) == 0,
			"%s host \"%s\": server \"%s\", want \"%s\"",
			t_hosts[i].addr, t_hosts[i].host, name,
			t_hosts[i].server);
		free(host);
	}
	pt_cycle_free(c);
}
END_TEST

/* Through the phase handler, as a request sees it. */
START_TEST(test_server_select_phase)
{
	struct pt_cycle *c = t_ok(t_names_conf, NULL);
	struct pt_conn conn;
	struct pt_http_request r;
	struct pt_http_srv_conf *sc;

	memset(&conn, 0, sizeof(conn));
	memset(&r, 0, sizeof(r));
	conn.addr = t_find_addr(c, "127.0.0.1:8081");
	r.conn = &conn;
	r.h.host.data = "a.example.com";
	r.h.host.len = strlen(r.h.host.data);
	ck_assert_int_eq(core_select_server_phase(&r), PT_OK);
	sc = t_srv(r.srv_conf);
	ck_assert_str_eq(sc->server_name.items[0], "*.example.com");
	ck_assert_ptr_eq(sc->server, r.server);
	ck_assert_ptr_eq(r.loc_conf, r.server->loc_conf);
	pt_cycle_free(c);
}
END_TEST

/* ---- templates and variables --------------------------------------------- */

struct t_req {
	struct pt_http_request r;
	struct pt_http_header hdrs[8];
	struct pt_conn conn;
};

static void
t_req_init(struct t_req *q, const char *args, const char *const *headers)
{
	memset(q, 0, sizeof(*q));
	q->r.pool = pt_pool_create();
	ck_assert_ptr_nonnull(q->r.pool);
	q->r.conn = &q->conn;
	q->r.args.data = args;
	q->r.args.len = strlen(args);
	q->r.h.headers = q->hdrs;
	for (unsigned i = 0; headers && headers[i]; i++) {
		const char *colon = strchr(headers[i], ':');
		struct pt_http_header *h = &q->hdrs[q->r.h.nheaders++];
		h->name.data = headers[i];
		h->name.len = (size_t)(colon - headers[i]);
		h->value.data = colon + 2;
		h->value.len = strlen(colon + 2);
		h->id = pt_http_header_id(h->name.data, h->name.len);
		if (q->r.h.known[h->id] == NULL)
			q->r.h.known[h->id] = h;
	}
}

static const char *const t_hdrs[] = { "Host: example.com",
				      "X-Forwarded-For: 10.0.0.1, 10.0.0.2",
				      "Cookie: a=1; ab=2;b=3; c=",
				      "User-Agent: curl/8",
				      "x-forwarded-for: 192.0.2.1",
				      "Cookie: d=4; a=second",
				      "Authorization: Basic dXNlcjpwYXNz",
				      NULL };

static const struct {
	const char *tpl, *args, *want; /* want NULL: refused at load */
} t_tpls[] = {
	{ "$arg_a", "a=1&b=2&a=3", "1" },
	{ "$arg_A", "a=1&b=2&a=3", "1" }, /* name: any case */
	{ "$arg_a", "A=9&a=1", "9" },
	{ "$arg_b", "a=1&b=2&a=3", "2" },
	{ "$arg_c", "a=1&b=2&a=3", "" },
	{ "$arg_a", "ab=2&a=1", "1" }, /* not a prefix match */
	{ "$arg_ab", "a=1&ab=2", "2" },
	{ "$arg_e", "e&f=1", "" }, /* no value */
	{ "$arg_f", "e&f=1", "1" },
	{ "$arg_x", "x=%41+b&y", "%41+b" }, /* raw, not decoded */
	{ "$arg_x", "x==1", "=1" },
	{ "$arg_x", "", "" },
	{ "$arg_x", "&&x=2&", "2" },
	{ "[$arg_a|$arg_b]", "b=2", "[|2]" },
	{ "$http_x_forwarded_for", "", "10.0.0.1, 10.0.0.2" },
	{ "$http_X_FORWARDED_FOR", "", "10.0.0.1, 10.0.0.2" },
	{ "$http_user_agent", "", "curl/8" },
	{ "$http_host", "", "example.com" },
	{ "$http_x_none", "", "" },
	{ "$http_x", "", "" },
	{ "$cookie_a", "", "1" },
	{ "$cookie_ab", "", "2" },
	{ "$cookie_b", "", "3" },
	{ "$cookie_c", "", "" },
	{ "$cookie_d", "", "4" }, /* second Cookie field */
	{ "$cookie_A", "", "" },  /* names are case-sensitive */
	{ "$cookie_x", "", "" },
	{ "$remote_user", "", "user" },
	{ "$uri?$args", "q=1", "/p?q=1" },
	{ "cost $ 5", "", "cost $ 5" }, /* '$' + non-name: literal */
	{ "100$", "", "100$" },
	{ "$$arg_a", "a=1", "$arg_a" }, /* "$$" is a literal '$' */
	{ "$$$arg_a", "a=1", "$1" },
	{ "cost $$5", "", "cost $5" },
	{ "a$$", "", "a$" },
	{ "$$$$", "", "$$" },
	{ "$$", "", "$" },
	{ "a$-b", "", "a$-b" },
	{ "${x}", "", "${x}" }, /* no braces syntax */
	{ "$5", NULL, NULL },
	{ "cost $5", NULL, NULL },
	{ "$nosuch", NULL, NULL },
	{ "$hostx", NULL, NULL },
	{ "$host_suffix", NULL, NULL },
	{ "$arg_", NULL, NULL },
	{ "$cookie_", NULL, NULL },
};

START_TEST(test_templates)
{
	struct pt_cycle *c = t_ok(T_SRV, NULL);
	struct pt_conf cf;

	memset(&cf, 0, sizeof(cf));
	cf.cycle = c;
	cf.pool = c->pool;
	cf.main_conf = c->main_conf;
	cf.to_stderr = 1;
	for (size_t i = 0; i < PT_ARRAY_SIZE(t_tpls); i++) {
		struct pt_tpl tpl;
		struct t_req q;
		struct pt_str out;
		int rc;

		if (t_tpls[i].args == NULL)
			continue;
		rc = pt_tpl_compile(&cf, NULL, t_tpls[i].tpl, &tpl);
		ck_assert_msg(rc == PT_OK, "template \"%s\" refused",
			      t_tpls[i].tpl);
		t_req_init(&q, t_tpls[i].args, t_hdrs);
		q.r.uri.data = "/p";
		q.r.uri.len = 2;
		ck_assert_int_eq(pt_tpl_eval(&q.r, &tpl, &out), PT_OK);
		ck_assert_msg(
			out.len == strlen(t_tpls[i].want) &&
				memcmp(out.data, t_tpls[i].want, out.len) == 0,
			"template \"%s\" args \"%s\": \"%.*s\", want "
			"\"%s\"",
			t_tpls[i].tpl, t_tpls[i].args, (int)out.len, out.data,
			t_tpls[i].want);
		pt_pool_destroy(q.r.pool);
	}
	pt_cycle_free(c);
}
END_TEST

/* Templates refused at load, with the message. */
START_TEST(test_tpl_errors)
{
	struct pt_cycle *c;

	c = t_ok(T_SRV, NULL);
	pt_cycle_free(c);
	for (size_t i = 0; i < PT_ARRAY_SIZE(t_tpls); i++) {
		char conf[512], want[256];
		const char *p = t_tpls[i].tpl;
		size_t n;

		if (t_tpls[i].args != NULL)
			continue;
		/* the first unknown name: from '$' to the last name char */
		p = strchr(p, '$');
		n = strspn(p + 1, "abcdefghijklmnopqrstuvwxyz"
				  "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
		snprintf(conf, sizeof(conf),
			 "servers = ( { listen = \"127.0.0.1:8080\";\n"
			 "  return = \"200 %s\"; } );\n",
			 t_tpls[i].tpl);
		snprintf(want, sizeof(want),
			 "portier: @F:2: unknown variable \"%.*s\" (write $$ for a literal '$')\n",
			 (int)n + 1, p);
		t_fails(conf, want);
	}
	/* a name ends at the first non-name character */
	c = t_ok("servers = ( { listen = \"127.0.0.1:8080\";\n"
		 "  return = \"200 $host:$server_port/$uri.$args-x\"; } );\n",
		 NULL);
	pt_cycle_free(c);
}
END_TEST

/* More parts than the evaluator keeps on its stack. */
START_TEST(test_tpl_many_parts)
{
	struct pt_cycle *c = t_ok(T_SRV, NULL);
	struct pt_conf cf;
	struct pt_tpl tpl;
	struct t_req q;
	struct pt_str out;
	char text[1024] = "", want[1024] = "";

	memset(&cf, 0, sizeof(cf));
	cf.cycle = c;
	cf.pool = c->pool;
	cf.to_stderr = 1;
	for (int i = 0; i < 50; i++) {
		strcat(text, "<$arg_a>");
		strcat(want, "<xy>");
	}
	ck_assert_int_eq(pt_tpl_compile(&cf, NULL, text, &tpl), PT_OK);
	ck_assert_uint_eq(tpl.nparts, 51);
	t_req_init(&q, "a=xy", NULL);
	ck_assert_int_eq(pt_tpl_eval(&q.r, &tpl, &out), PT_OK);
	ck_assert_uint_eq(out.len, strlen(want));
	ck_assert(memcmp(out.data, want, out.len) == 0);
	/* with no variable, the text itself */
	ck_assert_int_eq(pt_tpl_compile(&cf, NULL, "plain", &tpl), PT_OK);
	ck_assert_uint_eq(tpl.nparts, 0);
	ck_assert_int_eq(pt_tpl_eval(&q.r, &tpl, &out), PT_OK);
	ck_assert_uint_eq(out.len, 5);
	pt_pool_destroy(q.r.pool);
	pt_cycle_free(c);
}
END_TEST

/* $server_name, and $host without a Host: the server's first name. */
START_TEST(test_server_name_var)
{
	struct pt_cycle *c =
		t_ok("servers = ( { listen = \"127.0.0.1:8080\";\n"
		     "  server_name = [ \"WWW.test\", \"b.test\" ]; } );\n",
		     NULL);
	struct pt_conf cf;
	struct pt_tpl tpl;
	struct t_req q;
	struct pt_str out;

	memset(&cf, 0, sizeof(cf));
	cf.cycle = c;
	cf.pool = c->pool;
	cf.to_stderr = 1;
	ck_assert_int_eq(pt_tpl_compile(&cf, NULL, "$server_name|$host", &tpl),
			 PT_OK);
	t_req_init(&q, "", NULL);
	q.r.server = t_main(c)->servers[0];
	ck_assert_int_eq(pt_tpl_eval(&q.r, &tpl, &out), PT_OK);
	ck_assert_str_eq(out.data, "www.test|www.test");
	pt_pool_destroy(q.r.pool);
	pt_cycle_free(c);
}
END_TEST

/* mime.c: an unreadable mime_types file is reported without the file and
 * line of the setting (STYLE.md: config errors always carry them). */
START_TEST(test_mime_types_position)
{
	t_fails("mime_types = \"no-such.types\";\n" T_SRV,
		"portier: @F:1: \"mime_types\": cannot open "
		"@D/no-such.types: No such file or directory\n");
}
END_TEST

static Suite *
t_suite(void)
{
	Suite *s = suite_create("conf");
	TCase *tc = tcase_create("load");

	tcase_add_checked_fixture(tc, t_setup, t_teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_errors, 0, (int)PT_ARRAY_SIZE(t_errors));
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_user_group);
	tcase_add_test(tc, test_values);
	tcase_add_test(tc, test_defaults);
	tcase_add_test(tc, test_worker_processes_auto);
	tcase_add_test(tc, test_listen_flags);
	tcase_add_test(tc, test_env);
	tcase_add_test(tc, test_expand_env);
	tcase_add_test(tc, test_include);
	tcase_add_test(tc, test_include_relative_conf);
	tcase_add_test(tc, test_include_absolute);
	tcase_add_test(tc, test_include_glob);
	tcase_add_test(tc, test_warnings);
	tcase_add_test(tc, test_locations);
	tcase_add_test(tc, test_server_names);
	tcase_add_test(tc, test_server_select_phase);
	tcase_add_test(tc, test_templates);
	tcase_add_test(tc, test_tpl_errors);
	tcase_add_test(tc, test_tpl_many_parts);
	tcase_add_test(tc, test_server_name_var);
	tcase_add_test(tc, test_mime_types_position);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(t_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
