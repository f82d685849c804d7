/*
 * test_conf.c: configuration loading through the real path
 * (pt_cycle_load: libconfig, @include, ${VAR}, the settings tables, the
 * modules' postconfig) and its errors, compared whole with file:line.
 * Most of the coverage is data: a table of (config, expected stderr).
 * What is built from a loaded cycle (locations, server names, templates)
 * is in test_http_core.c.
 */
#include "core.h"
#include "conf.h"
#include "cycle.h"
#include "http.h"
#include "conf_load.h"

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
	  "default_server, reuseport, backlog=N, ssl, proxy_protocol)\n" },
	{ "servers = ( { listen = \"127.0.0.1:80 default\"; } );\n",
	  "portier: @F:1: \"listen\": unknown flag \"default\" (known: "
	  "default_server, reuseport, backlog=N, ssl, proxy_protocol)\n" },
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
	tcase_add_test(tc, test_include_glob);
	tcase_add_test(tc, test_include_absolute);
	tcase_add_test(tc, test_warnings);
	tcase_add_test(tc, test_mime_types_position);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return pt_unit_run(t_suite());
}
