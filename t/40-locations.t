#!/usr/bin/perl
# Location and virtual server selection, end to end: nginx's location
# semantics (=, longest prefix, ^~, regexes in config order), matching on
# the decoded and normalized path, and the choice of a server by host name
# among the servers of an address (exact, *.leading, trailing.*, ~regex,
# default_server, first server), including a specific address that shares
# the socket of a wildcard address on the same port.
#
# Every location and server answers a distinct `return` text, so a
# response tells which one was chosen.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use Test::More;

PortierTest::need_modules(qw(rewrite static));

my $t = PortierTest->new;
$t->write_file('srv/plain.txt', "server level file\n");

# port 0: locations; port 1: names with an explicit default_server (the
# wildcard 0.0.0.0 socket shares it); port 2: names without one.
$t->config(<<'EOF')->run;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "loc.test";
    root = "%%DIR%%/srv";
    locations = (
      { path = "= /";              return = "200 exact-root"; },
      { path = "= /exact";         return = "200 exact"; },
      { path = "/exact";           return = "200 prefix-exact"; },
      { path = "/a";               return = "200 prefix-a"; },
      { path = "/a/b";             return = "200 prefix-ab"; },
      { path = "/b";               return = "200 prefix-b"; },
      { path = "^~ /static/";      return = "200 stop-static"; },
      { path = "/static/long/";    return = "200 prefix-static-long"; },
      { path = "~ \\.png$";        return = "200 regex-png"; },
      { path = "~* \\.(png|jpg)$"; return = "200 regex-ci-img"; },
      { path = "~ ^/a/.*\\.x$";    return = "200 regex-ax"; },
      { path = "~ ^/sp ace$";      return = "200 regex-space"; },
      { path = "/docs/";           return = "200 prefix-docs"; },
      { path = "~ ^/docs/(.*)\\.md$"; return = "200 regex-md"; }
    );
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    server_name = [ "exact.test", "exact2.example.com" ];
    return = "200 srv-exact";
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    server_name = "*.example.com";
    return = "200 srv-leading";
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    server_name = "*.b.example.com";
    return = "200 srv-leading-long";
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    server_name = [ "www.example.*", "www.exa.*" ];
    return = "200 srv-trailing";
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    server_name = [ "~^re[0-9]+\\.test$", "~example" ];
    return = "200 srv-regex1";
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    server_name = "~^re1\\.test$";
    return = "200 srv-regex2";
  },
  {
    listen = "127.0.0.1:%%PORT_1%% default_server";
    server_name = "default.test";
    return = "200 srv-default";
  },
  {
    listen = "0.0.0.0:%%PORT_1%%";
    server_name = "exact.test";
    return = "200 srv-wildcard-addr";
  },
  {
    listen = "127.0.0.1:%%PORT_2%%";
    server_name = "first.test";
    return = "200 p2-first";
  },
  {
    listen = [ "127.0.0.1:%%PORT_2%%", "127.0.0.1:%%PORT_3%%" ];
    server_name = "second.test";
    return = "200 p2-second";
  }
);
EOF

sub body_of {
	my ($path, %o) = @_;
	my $r = $t->get($path, %o);
	return undef unless $r;
	return $r->{status} == 200 ? $r->{body} : "status $r->{status}";
}

# ---- locations --------------------------------------------------------------

my @loc = (
	# exact
	[ '/',                 'exact-root',   '= / wins over nothing else' ],
	[ '/exact',            'exact',        '= beats an equal prefix' ],
	[ '/exact/',           'prefix-exact', '= does not match a longer path' ],
	[ '/exactly',          'prefix-exact', 'prefix without a slash boundary' ],
	[ '/exact?x=1',        'exact',        'the query is not part of the path' ],
	# longest prefix
	[ '/a',                'prefix-a',     'prefix /a' ],
	[ '/a/bc',             'prefix-ab',    'longest prefix /a/b wins' ],
	[ '/ab',               'prefix-a',     'prefix /a matches /ab' ],
	[ '/b/c',              'prefix-b',     'prefix /b' ],
	# regexes beat a plain prefix, in configuration order
	[ '/a/x.png',          'regex-png',    'regex beats the longest prefix' ],
	[ '/a/y.x',            'regex-ax',     'regex ^/a/.*\.x$' ],
	[ '/q.png',            'regex-png',    'first matching regex in config order' ],
	[ '/q.PNG',            'regex-ci-img', '~ is case-sensitive, ~* is not' ],
	[ '/q.Jpg',            'regex-ci-img', '~* case-insensitive' ],
	[ '/docs/x.md',        'regex-md',     'regex beats a prefix ending in /' ],
	[ '/docs/x.txt',       'prefix-docs',  'prefix when no regex matches' ],
	# ^~
	[ '/static/i.png',     'stop-static',  '^~ prefix skips the regexes' ],
	[ '/static/long/i.png', 'regex-png',
	  '^~ only counts when it is the longest prefix' ],
	[ '/static/long/i.txt', 'prefix-static-long', 'longer plain prefix' ],
	# normalized, decoded paths
	[ '/a/%2e%2e/b',       'prefix-b',     '%2e%2e is a dot segment' ],
	[ '/a/../b',           'prefix-b',     '.. is removed before matching' ],
	[ '/x/./../exact',     'exact',        '. and .. segments' ],
	[ '/%65xact',          'exact',        'percent-decoded before matching' ],
	[ '/EXACT',            'status 404',   'paths are case-sensitive' ],
	[ '//exact',           'exact',        'repeated slashes merged' ],
	[ '/a%2fb',            'prefix-ab',    '%2f decodes to a separator' ],
	[ '/sp%20ace',         'regex-space',  'regex sees the decoded path' ],
	[ '/static%2Fi.png',   'stop-static',  'encoded slash in a ^~ prefix' ],
	[ '/q%2Epng',          'regex-png',    'encoded dot in a regex match' ],
	[ '/exact/..',         'exact-root',   'a final .. climbs to /' ],
	[ '/exact/.',          'prefix-exact', 'a final . leaves the directory' ],
);
for my $c (@loc) {
	is(body_of($c->[0]), $c->[1], "location: $c->[0]: $c->[2]");
}

# no location matches: the server's own settings (its root) apply
my $r = $t->get('/plain.txt');
is($r->{status}, 200, 'no matching location: server level');
is($r->{body}, "server level file\n", 'server-level root serves the file');

# a path climbing above / is refused, whatever its spelling
for my $p ('/..', '/../exact', '/%2e%2e/exact', '/a/../../exact', '/.%2e/') {
	is($t->get($p)->{status}, 400, "climbing above /: $p is 400");
}

# ---- virtual servers ------------------------------------------------------

my $p1 = $t->port(1);
my @names = (
	[ 'exact.test',          'srv-exact',         'exact name' ],
	[ 'EXACT.Test',          'srv-exact',         'names compared in lower case' ],
	[ 'exact.test:8080',     'srv-exact',         'port ignored' ],
	[ 'exact.test.',         'srv-exact',         'trailing dot ignored' ],
	[ 'exact.test.:80',      'srv-exact',         'trailing dot and port' ],
	[ 'exact2.example.com',  'srv-exact',         'exact beats wildcards' ],
	[ 'x.example.com',       'srv-leading',       '*.example.com' ],
	[ 'www.example.com',     'srv-leading',       'leading wildcard beats trailing' ],
	[ 'a.b.example.com',     'srv-leading-long',  'longest leading wildcard' ],
	[ 'x.y.b.example.com',   'srv-leading-long',  'leading wildcard, several labels' ],
	[ 'example.com',         'srv-regex1',        '*.example.com does not match example.com' ],
	[ 'www.example.org',     'srv-trailing',      'www.example.*' ],
	[ 'www.exa.org',         'srv-trailing',      'shorter trailing wildcard' ],
	[ 'www.example',         'srv-regex1',        'www.example.* needs a label after the dot' ],
	[ 're1.test',            'srv-regex1',        'first matching regex in config order' ],
	[ 're22.test',           'srv-regex1',        'regex' ],
	[ 'RE3.TEST',            'srv-regex1',        'regex without regard to case' ],
	[ 'nobody.test',         'srv-default',       'default_server for an unknown name' ],
	[ 'default.test',        'srv-default',       'default server by its name' ],
	[ '127.0.0.1',           'srv-default',       'an address is an unknown name' ],
);
for my $c (@names) {
	is(body_of('/', port => $p1, host => $c->[0]), $c->[1],
		"server: Host $c->[0]: $c->[2]");
}

# absolute-form: the target's authority, not the Host field, picks
my $raw = $t->raw("GET http://exact.test/ HTTP/1.1\r\nHost: www.example.org\r\n"
	. "Connection: close\r\n\r\n", port => $p1);
is(PortierTest::parse_response($raw)->{body}, 'srv-exact',
	'absolute-form authority used');
$raw = $t->raw("GET http://WWW.EXAMPLE.ORG:99/x HTTP/1.1\r\nHost: exact.test\r\n"
	. "Connection: close\r\n\r\n", port => $p1);
is(PortierTest::parse_response($raw)->{body}, 'srv-trailing',
	'absolute-form authority with port and case');

# HTTP/1.0 without Host: the default server
$raw = $t->raw("GET / HTTP/1.0\r\n\r\n", port => $p1);
is(PortierTest::parse_response($raw)->{body}, 'srv-default',
	'no Host: default server');

# the wildcard server on the same port: 127.0.0.1 has its own servers, so
# the wildcard's names are not consulted for it
is(body_of('/', port => $p1, host => 'exact.test'), 'srv-exact',
	'specific address beats the wildcard address for its own traffic');

# an address without default_server: its first server is the default
my $p2 = $t->port(2);
is(body_of('/', port => $p2, host => 'unknown.test'), 'p2-first',
	'first server is the default without default_server');
is(body_of('/', port => $p2, host => 'second.test'), 'p2-second',
	'second server of a shared address by name');
is(body_of('/', port => $p2, host => 'first.test'), 'p2-first',
	'first server by name');
is(body_of('/', port => $t->port(3), host => 'first.test'), 'p2-second',
	'a name of another address does not leak to this one');

$t->stop;

# ---- a specific address and the wildcard of its port --------------------

my $w = PortierTest->new;
$w->config(<<'EOF')->run;
servers = (
  { listen = "127.0.0.1:%%PORT_0%%"; return = "200 specific $server_addr"; },
  { listen = "0.0.0.0:%%PORT_0%%"; server_name = "w.test";
    return = "200 wildcard"; }
);
EOF
$r = $w->get('/', host => 'other.test');
is($r->{body}, 'specific 127.0.0.1', '127.0.0.1:P beats 0.0.0.0:P');
$r = $w->get('/', host => 'w.test');
is($r->{body}, 'specific 127.0.0.1',
	'names of the wildcard server do not apply to the specific address');
$w->stop;

# the same, wildcard first in the configuration
$w = PortierTest->new;
$w->config(<<'EOF')->run;
servers = (
  { listen = "0.0.0.0:%%PORT_0%%"; return = "200 wildcard"; },
  { listen = "127.0.0.1:%%PORT_0%%"; return = "200 specific"; }
);
EOF
is($w->get('/')->{body}, 'specific',
	'specific address wins whatever the order');
$w->stop;

# ---- listen flags on one server only --------------------------------------

my $f = PortierTest->new;
for my $c (
	[ 'default_server', 'default_server' ],
	[ 'reuseport', 'reuseport' ],
	[ 'backlog=10', 'backlog' ],
) {
	$f->config(<<"EOF");
servers = (
  { listen = "127.0.0.1:%%PORT_0%% $c->[0]"; return = 204; },
  { listen = "127.0.0.1:%%PORT_0%% $c->[0]"; server_name = "b"; return = 204; }
);
EOF
	my ($code, $out, $err) = $f->run_cmd('-t', '-c', $f->conf_path);
	isnt($code, 0, "listen flag $c->[0] on two servers refused");
	like($out . $err, qr/portier\.conf:\d+:.*$c->[1]/,
		"... with file:line and the flag");
}
$f->config(<<'EOF');
servers = (
  { listen = "127.0.0.1:%%PORT_0%% reuseport default_server backlog=64";
    return = 204; },
  { listen = "127.0.0.1:%%PORT_0%%"; server_name = "b"; return = 204; }
);
EOF
my ($code, $out, $err) = $f->run_cmd('-t', '-c', $f->conf_path);
is($code, 0, 'flags on one server, the address shared by another')
	or diag($out . $err);
$f->config(<<'EOF');
worker_processes = 2;
servers = (
  { listen = "127.0.0.1:%%PORT_0%%"; server_name = "a"; return = "200 a"; },
  { listen = "127.0.0.1:%%PORT_0%% reuseport default_server";
    server_name = "b"; return = "200 b"; }
);
EOF
$f->run(workers => 2);
is($f->get('/', host => 'a')->{body}, 'a', 'reuseport address: first server by name');
is($f->get('/', host => 'b')->{body}, 'b', 'reuseport address: second server by name');
is($f->get('/', host => 'c')->{body}, 'b',
	'default_server given on the second server of the address');
my %seen;
$seen{ $f->get('/', host => 'a')->{body} }++ for 1 .. 10;
is_deeply([ keys %seen ], [ 'a' ], 'every worker socket serves both servers');
$f->stop;

done_testing;
