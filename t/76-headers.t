#!/usr/bin/perl
# mod_headers: add_header on 2xx/3xx responses, add_header_always on
# every response (error pages too), with templates, empty values adding
# nothing, values with CR/LF left out, and inheritance main -> server ->
# location where a level that sets a list replaces the outer one. Seen on
# `return` responses, static files (200, 304, 404, 405) and error pages
# given before any location (400).
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use Test::More;

PortierTest::need_modules(qw(headers rewrite static));

my $t = PortierTest->new;
my $dir = $t->dir;
$t->write_file('www/files/a.txt', "file a\n");

# through the proxy too, when it is compiled in
my $has_proxy = PortierTest::modules()->{proxy};
my ($b, $proxy_loc) = (undef, '');
if ($has_proxy) {
	require PortierBackend;
	$b = PortierBackend->new(name => 'b1', dir => $dir);
	$proxy_loc = '{ path = "/up/"; proxy_pass = "b1"; },';
}

my $conf = <<'EOF';
add_header = { X-Main = "main"; };
add_header_always = { X-Always-Main = "am"; };
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "a.test";
    locations = (
      %%PROXY%%
      { path = "= /ok";   return = "200 ok"; },
      { path = "= /404";  return = 404; },
      { path = "= /500";  return = 500; },
      { path = "= /301";  return = "301 /elsewhere"; },
      { path = "= /204";  return = 204; },
      { path = "= /loc";
        add_header = { X-Loc = "loc"; X-Empty = ""; X-Id = "$request_id";
                       X-Arg = "$arg_v"; X-Status = "$status"; };
        return = "200 loc"; },
      { path = "/echo/";
        add_header = { X-Uri = "$uri"; X-After = "after"; };
        return = "200 echo"; },
      { path = "= /clear"; add_header = {}; add_header_always = {};
        return = "200 clear"; },
      { path = "/files/"; root = "%%DIR%%/www";
        add_header = { Cache-Control = "max-age=60"; };
        add_header_always = { X-Static = "yes"; }; }
    );
  },
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "b.test";
    add_header = { X-Server = "b"; };
    locations = (
      { path = "/"; return = "200 b"; },
      { path = "/own"; add_header = { X-Own = "own"; }; return = "200 own"; },
      { path = "/gone"; return = 410; }
    );
  }
);
EOF
$conf =~ s/%%PROXY%%/$proxy_loc/;
$conf = 'upstreams = { b1 = { servers = ( { address = "127.0.0.1:'
	. $b->port . "\"; } ); }; };\n$conf" if $has_proxy;
$t->config($conf)->run;

my $r;
sub get { my ($p, %o) = @_; $t->get($p, host => $o{host} // 'a.test', %o) }

# ---- 2xx/3xx get both lists, errors only the "always" one ----------------
$r = get('/ok');
is($r->{status}, 200, '/ok: 200');
is($r->{headers}{'x-main'}, 'main', '200: add_header of main');
is($r->{headers}{'x-always-main'}, 'am', '200: add_header_always of main');
is($r->{body}, 'ok', '200: body unchanged');

for my $code (404, 500) {
	$r = get("/$code");
	is($r->{status}, $code, "/$code: $code");
	ok(!exists $r->{headers}{'x-main'}, "$code: no add_header");
	is($r->{headers}{'x-always-main'}, 'am', "$code: add_header_always");
	like($r->{body}, qr/<html>/, "$code: the error page");
}

$r = get('/301');
is($r->{status}, 301, '/301: 301');
is($r->{headers}{'x-main'}, 'main', '301: add_header (3xx)');
is($r->{headers}{location}, '/elsewhere', '301: Location kept');

$r = get('/204');
is($r->{status}, 204, '/204: 204');
is($r->{headers}{'x-main'}, 'main', '204: add_header');
like($r->{raw}, qr/\r\n\r\n\z/, '204: still no body');

$r = $t->head('/ok', host => 'a.test');
is($r->{headers}{'x-main'}, 'main', 'HEAD: add_header');

# ---- templates, empty values, replacing the outer list ---------------------
$r = get('/loc?v=abc');
is($r->{headers}{'x-loc'}, 'loc', 'location list: its field');
ok(!exists $r->{headers}{'x-main'}, 'location list replaces the main one');
is($r->{headers}{'x-always-main'}, 'am',
	'add_header_always still inherited on its own');
ok(!exists $r->{headers}{'x-empty'}, 'an empty value adds nothing');
like($r->{headers}{'x-id'} // '', qr/^[0-9a-f]{32}\z/, '$request_id');
is($r->{headers}{'x-arg'}, 'abc', '$arg_v');
is($r->{headers}{'x-status'}, '200', '$status is the response status');
$r = get('/loc');
ok(!exists $r->{headers}{'x-arg'}, 'a variable that is empty adds nothing');
my @names = map { lc $_->[0] } @{ $r->{header_list} };
my ($i_loc) = grep { $names[$_] eq 'x-loc' } 0 .. $#names;
my ($i_always) = grep { $names[$_] eq 'x-always-main' } 0 .. $#names;
my ($i_type) = grep { $names[$_] eq 'content-type' } 0 .. $#names;
ok(defined $i_loc && defined $i_always && $i_type < $i_loc
	&& $i_loc < $i_always,
	'added after the response fields, add_header before the always ones');

$r = get('/clear');
is($r->{status}, 200, '/clear: 200');
ok(!exists $r->{headers}{'x-main'} && !exists $r->{headers}{'x-always-main'},
	'empty groups clear both inherited lists');

# a decoded $uri may hold CR LF: the field is left out, the head is whole
$r = get('/echo/a%0d%0aX-Evil:%201');
is($r->{status}, 200, 'CR LF in $uri: still 200');
ok(!exists $r->{headers}{'x-evil'}, 'CR LF in $uri: no injected field');
ok(!exists $r->{headers}{'x-uri'}, 'CR LF in $uri: the field is left out');
is($r->{headers}{'x-after'}, 'after', 'CR LF in $uri: the next field added');
ok($t->wait_log(qr/"X-Uri" left out/), 'the left-out field is logged');
$r = get('/echo/plain');
is($r->{headers}{'x-uri'}, '/echo/plain', '$uri in a field');

# ---- static files -------------------------------------------------------------
$r = get('/files/a.txt');
is($r->{status}, 200, 'static: 200');
is($r->{body}, "file a\n", 'static: body');
is($r->{headers}{'cache-control'}, 'max-age=60', 'static 200: add_header');
is($r->{headers}{'x-static'}, 'yes', 'static 200: add_header_always');
ok(!exists $r->{headers}{'x-always-main'},
	'static: its add_header_always replaced the main one');
my $etag = $r->{headers}{etag};

$r = get('/files/a.txt', headers => [ "If-None-Match: $etag" ]);
is($r->{status}, 304, 'static conditional: 304');
is($r->{headers}{'cache-control'}, 'max-age=60', '304: add_header (3xx)');

$r = get('/files/missing.txt');
is($r->{status}, 404, 'static missing: 404');
ok(!exists $r->{headers}{'cache-control'}, '404: no add_header');
is($r->{headers}{'x-static'}, 'yes', '404: add_header_always');

$r = $t->request('DELETE', '/files/a.txt', host => 'a.test');
is($r->{status}, 405, 'static DELETE: 405');
is($r->{headers}{'x-static'}, 'yes', '405: add_header_always');
like($r->{headers}{allow} // '', qr/GET/, '405: Allow kept');

# ---- proxied responses ----------------------------------------------------------
SKIP: {
	skip 'proxy not compiled in', 6 unless $has_proxy;
	$r = get('/up/headers?h=X-Backend-Field:1');
	is($r->{status}, 200, 'proxied: 200');
	is($r->{headers}{'x-main'}, 'main', 'proxied 200: add_header');
	is($r->{headers}{'x-backend-field'}, '1', 'proxied: backend fields kept');
	$r = get('/up/status/503');
	is($r->{status}, 503, 'proxied 503 from the backend');
	ok(!exists $r->{headers}{'x-main'}, 'proxied 503: no add_header');
	is($r->{headers}{'x-always-main'}, 'am', 'proxied 503: always');
}

# ---- server level ------------------------------------------------------------------
$r = get('/', host => 'b.test');
is($r->{headers}{'x-server'}, 'b', 'server list');
ok(!exists $r->{headers}{'x-main'}, 'server list replaces the main one');
is($r->{headers}{'x-always-main'}, 'am', 'main add_header_always inherited');
$r = get('/own', host => 'b.test');
is($r->{headers}{'x-own'}, 'own', 'location list in a server');
ok(!exists $r->{headers}{'x-server'}, 'location list replaces the server one');
$r = get('/gone', host => 'b.test');
is($r->{status}, 410, 'gone: 410');
ok(!exists $r->{headers}{'x-server'}, '410: no add_header');

# ---- error pages before a location, and keep-alive ------------------------------
my $raw = $t->raw("GET / HTTP/1.1\r\nHost: a.test\r\nHost: b.test\r\n\r\n");
$r = PortierTest::parse_response($raw);
is($r->{status}, 400, 'two Host fields: 400');
is($r->{headers}{'x-always-main'}, 'am', '400: add_header_always of main');
ok(!exists $r->{headers}{'x-main'}, '400: no add_header');

my @rs = $t->pipeline(join('', map { "GET $_ HTTP/1.1\r\nHost: a.test\r\n\r\n" }
	'/ok', '/404', '/loc', '/ok'), 4);
is_deeply([ map { $_->{headers}{'x-main'} // '-' } @rs ],
	[ 'main', '-', '-', 'main' ], 'pipelined: each response its own fields');
is_deeply([ map { scalar grep { lc $_->[0] eq 'x-always-main' }
	@{ $_->{header_list} } } @rs ], [ 1, 1, 1, 1 ],
	'pipelined: every field once');

# ---- configuration errors -----------------------------------------------------
my @bad = (
	[ 'add_header = "X-A: b";', qr/"add_header" expects a group/ ],
	[ 'add_header = { Content-Length = "1"; };',
	  qr/"Content-Length" frames the message/ ],
	[ 'add_header_always = { Connection = "close"; };',
	  qr/"Connection" frames the message/ ],
	[ 'add_header = { X-A = "$no_such_var"; };', qr/no_such_var/ ],
	[ 'add_header = { X-A = 5; };', qr/must be a field name set to a string/ ],
	[ "add_header = { X-A = \"a\\nb\"; };", qr/line break/ ],
);
for my $b (@bad) {
	my ($line, $re) = @$b;
	$t->write_file('bad.conf', "$line\nservers = ( { listen = "
		. "\"127.0.0.1:1\"; locations = ( { path = \"/\"; return = "
		. "\"200 x\"; } ); } );\n");
	my ($rc, undef, $err) = $t->run_cmd('-t', '-c', "$dir/bad.conf");
	is($rc, 1, "-t refuses: $line");
	like($err, qr/bad\.conf:1: .*$re/, "-t names file, line and cause: $line");
}

done_testing();
