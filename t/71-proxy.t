#!/usr/bin/perl
# The reverse proxy's HTTP behaviour, end to end: a real portier in front
# of real backends (t/lib/PortierBackend.pm) on loopback. What the backend
# sees (its request log) and what the client gets are both checked:
# methods and lengths passed through, the request line (raw path kept,
# dot-segments removed), Host and proxy_set_header, hop-by-hop fields
# dropped both ways, X-Forwarded-*/Forwarded/Via, hide_header, chunked
# bodies both ways, close-delimited bodies, large bodies (sha1), bounded
# worker memory for a slow client and a slow backend, invalid backend
# responses (502, never relayed), keep-alive to the backend and the
# $upstream_* variables in the access log.
#
# Every wait is a bounded poll; the only pauses are the pace of a
# deliberately slow client, never a timing a check depends on.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha1_hex);
use IO::Select;
use PortierTest;
use PortierHTTP;
use PortierBackend;
use Test::More;
use Time::HiRes qw(time sleep);

PortierTest::need_modules(qw(proxy));

my $t = PortierTest->new;
my $b1 = PortierBackend->new(name => 'b1', dir => $t->dir,
	port => $t->port(1));
my $b2 = PortierBackend->new(name => 'b2', dir => $t->dir,
	port => $t->port(2));
$t->port(3); # nothing listens there: a refused peer
my $has_curl = `sh -c 'command -v curl'` ne '';

my $LOGFMT = '$request_uri|$status|$upstream_addr|$upstream_status|'
	. '$upstream_response_time|$upstream_connect_time';

$t->config(<<"EOF")->run;
upstreams = {
  app = { servers = ( { address = "127.0.0.1:%%PORT_1%%"; } ); };
  two = { servers = ( { address = "127.0.0.1:%%PORT_3%%"; },
                      { address = "127.0.0.1:%%PORT_1%%"; } ); };
  # invalid answers on purpose: never marked down
  bad = { servers = ( { address = "127.0.0.1:%%PORT_1%%"; max_fails = 0; } ); };
};
servers = ( {
  listen = "127.0.0.1:%%PORT_0%%";
  client_max_body_size = 0;
  locations = (
    { path = "/"; proxy_pass = "app"; },
    { path = "/direct/"; proxy_pass = "http://127.0.0.1:%%PORT_2%%"; },
    { path = "/set/"; proxy_pass = "app";
      proxy_set_header = { Host = "backend.test"; X-Remove = "";
        User-Agent = ""; X-Var = "\$request_method|\$arg_v|\$remote_addr|\$host|\$uri"; }; },
    { path = "/other/"; proxy_pass = "app";
      proxy_set_header = { X-Added = "yes"; }; },
    { path = "/rfc/"; proxy_pass = "app"; forwarded = "rfc7239"; },
    { path = "/both/"; proxy_pass = "app"; forwarded = "both"; },
    { path = "/off/"; proxy_pass = "app"; forwarded = "off"; },
    { path = "/via/"; proxy_pass = "app"; via = true; },
    { path = "/hide/"; proxy_pass = "app";
      hide_header = [ "X-Secret", "x-other" ]; },
    { path = "/log/"; proxy_pass = "app";
      access_log = { path = "%%DIR%%/up.log"; format = "$LOGFMT"; }; },
    { path = "/x/"; proxy_pass = "bad"; proxy_next_upstream = "off"; },
    { path = "/two/"; proxy_pass = "two";
      access_log = { path = "%%DIR%%/up.log"; format = "$LOGFMT"; }; }
  );
} );
EOF

my ($worker) = $t->worker_pids;

sub req {
	my ($method, $target, @h) = @_;
	return "$method $target HTTP/1.1\r\nHost: localhost\r\n"
		. join('', map { "$_\r\n" } @h) . "\r\n";
}

sub conn { connect_raw($t, @_) }

# One request on a new connection; the parsed response (a body delimited
# by the close too) and the raw reading result.
sub one {
	my ($bytes, %o) = @_;
	my $s = conn();
	write_all($s, $bytes);
	my $r = read_responses($s, 1, %o);
	my $resp = $r->{responses}[0] // ($r->{eof} && length $r->{rest}
		? PortierTest::parse_response($r->{rest}) : undef);
	close $s;
	return ($resp // { status => 0, headers => {}, body => '',
		raw => $r->{rest} }, $r);
}

# The last request the backend logged whose target matches re.
sub seen {
	my ($b, $re) = @_;
	my ($q) = reverse grep { ($_->{target} // '') =~ $re } $b->requests;
	return $q // { header => {}, headers => [], raw_headers => [] };
}

# Names of the fields of a request the backend saw, lower case.
sub names { map { lc $_->[0] } @{ $_[0]{headers} } }

sub count_field {
	my ($q, $name) = @_;
	return scalar grep { lc $_->[0] eq lc $name } @{ $q->{headers} };
}

sub curl {
	my (@args) = @_;
	my $out = `curl -s --max-time 30 @args`;
	return ($out, $? >> 8);
}

# ---- basic proxying: GET, HEAD, POST, lengths ----------------------------
{
	my ($r) = one(req('GET', '/basic?size=1000'));
	is($r->{status}, 200, 'GET: 200 from the backend');
	is($r->{headers}{'x-backend'}, 'b1', 'GET: answered by the backend');
	is($r->{headers}{'content-length'}, 1000,
		'GET: the backend\'s Content-Length passed through');
	ok(!exists $r->{headers}{'transfer-encoding'},
		'GET: a known length is not re-framed in chunks');
	ok($r->{body} eq PortierBackend::pattern(0, 1000), 'GET: the body');
	my $q = seen($b1, qr{^/basic});
	is($q->{method}, 'GET', 'GET: the backend saw GET');
	ok(!defined $q->{header}{'content-length'}
		&& !defined $q->{header}{'transfer-encoding'},
		'GET without a body: no framing field to the backend');

	($r) = one(req('HEAD', '/basic-head?size=1000'), head_only => [1]);
	is($r->{status}, 200, 'HEAD: 200');
	is($r->{headers}{'content-length'}, 1000,
		'HEAD: the length of the GET passed through');
	is($r->{body}, '', 'HEAD: no body');
	is(seen($b1, qr{^/basic-head})->{method}, 'HEAD',
		'HEAD: the backend saw HEAD');

	($r) = one(req('POST', '/sha1?post', 'Content-Length: 11',
		'Content-Type: text/x-test') . 'hello world');
	is($r->{body}, sha1_hex('hello world') . " 11\n",
		'POST: the body reached the backend');
	$q = seen($b1, qr{^/sha1\?post});
	is($q->{method}, 'POST', 'POST: the backend saw POST');
	is($q->{header}{'content-length'}, 11,
		'POST: Content-Length passed to the backend');
	is($q->{header}{'content-type'}, 'text/x-test',
		'POST: end-to-end fields passed to the backend');
	is($q->{body}, 'hello world', 'POST: the body as sent');

	($r) = one(req('POST', '/sha1?empty', 'Content-Length: 0'));
	is($r->{body}, sha1_hex('') . " 0\n", 'POST with an empty body');
	is(seen($b1, qr{^/sha1\?empty})->{header}{'content-length'}, '0',
		'POST with an empty body: Content-Length: 0 to the backend');

	($r) = one(req('GET', '/status/404'));
	is($r->{status}, 404, 'a backend status is passed through (404)');
	($r) = one(req('GET', '/status/204'));
	ok($r->{status} == 204 && !exists $r->{headers}{'content-length'}
		&& !exists $r->{headers}{'transfer-encoding'}
		&& $r->{body} eq '', '204: no body, no framing');
	($r) = one(req('PUT', '/sha1?put', 'Content-Length: 3') . 'abc');
	is($r->{body}, sha1_hex('abc') . " 3\n", 'PUT: the body');
}

# ---- proxy_pass "http://host:port" ---------------------------------------
{
	my ($r) = one(req('GET', '/direct/x?y=1'));
	is($r->{headers}{'x-backend'}, 'b2',
		'proxy_pass "http://127.0.0.1:PORT": that backend answers');
	is(seen($b2, qr{^/direct/})->{target}, '/direct/x?y=1',
		'proxy_pass "http://...": the URI is passed unchanged');
}

# ---- the request line the backend sees -----------------------------------
{
	my @cases = (
		['/raw/a%2Fb/%41?q=%2F&x=%41', '/raw/a%2Fb/%41?q=%2F&x=%41',
			'%2F and %41 kept as sent, query kept'],
		['/raw/a/./b/../c', '/raw/a/c', 'dot-segments removed'],
		['/raw/a/%2e%2e/c', '/raw/c', '%2e%2e is a dot-segment'],
		['/raw/a/%2E/b', '/raw/a/b', '%2E is a dot-segment'],
		['/raw/a/.%2e/b?x=/../', '/raw/b?x=/../',
			'.%2e removed, the query untouched'],
		['/raw/a/b/..', '/raw/a/', 'a final ".." keeps the slash'],
		['/raw/a/b/.', '/raw/a/b/', 'a final "." keeps the slash'],
		['/raw//a//b', '/raw//a//b', 'empty segments kept'],
		['/raw/a%20b?', '/raw/a%20b?', 'an empty query kept'],
		['/raw/%2e%2eb/..c', '/raw/%2e%2eb/..c',
			'segments that only start with dots are kept'],
	);
	for my $c (@cases) {
		my ($sent, $want, $what) = @$c;
		my ($r) = one(req('GET', $sent));
		is($r->{status}, 200, "request line: $what: 200");
		my $q = seen($b1, qr{^\Q$want\E$});
		is($q->{target}, $want, "request line: $what ($sent)");
		is($q->{version}, 'HTTP/1.1', "request line: $what: HTTP/1.1");
	}
	my ($r) = one("GET http://other.test:8080/raw/abs?x=1 HTTP/1.1\r\n"
		. "Host: localhost\r\nConnection: close\r\n\r\n");
	is($r->{status}, 200, 'absolute-form: 200');
	my $q = seen($b1, qr{^/raw/abs});
	is($q->{target}, '/raw/abs?x=1',
		'absolute-form: origin-form to the backend');
	is($q->{header}{host}, 'other.test:8080',
		'absolute-form: Host is the target\'s authority');
	is(count_field($q, 'Host'), 1, 'absolute-form: one Host');
	($r) = one("GET /raw/h10 HTTP/1.0\r\n\r\n", until_eof => 1);
	is($r->{status}, 200, 'HTTP/1.0 client without Host: 200');
	like($r->{raw}, qr{^HTTP/1\.1 200}, 'HTTP/1.0 client: answered');
	$q = seen($b1, qr{^/raw/h10});
	is($q->{version}, 'HTTP/1.1', 'HTTP/1.0 client: HTTP/1.1 to the backend');
	# a 1.1 request needs a Host (a strict backend refuses one without):
	# the upstream's name stands in, as nginx's $proxy_host does
	is(count_field($q, 'Host') . "|$q->{header}{host}", '1|app',
		'HTTP/1.0 client without Host: the upstream name as Host');
}

# ---- Host and proxy_set_header -------------------------------------------
{
	one(req('GET', '/host1', 'X-Remove: kept here')
		=~ s/Host: localhost/Host: Example.TEST:8080/r);
	my $q = seen($b1, qr{^/host1});
	# a host name is case-insensitive: the core may lower-case it
	is(lc $q->{header}{host}, 'example.test:8080',
		'Host preserved as the client sent it, with its port');
	is(count_field($q, 'Host'), 1, 'one Host');
	is($q->{header}{'x-remove'}, 'kept here',
		'a field passes where no proxy_set_header removes it');

	one(req('GET', '/set/a?v=42', 'X-Remove: secret',
		'User-Agent: agent/1', 'X-Var: from-client', 'X-Keep: 1')
		=~ s/Host: localhost/Host: front.test/r);
	$q = seen($b1, qr{^/set/a});
	is($q->{header}{host}, 'backend.test', 'proxy_set_header Host');
	is(count_field($q, 'Host'), 1, 'proxy_set_header Host: one Host');
	ok(!defined $q->{header}{'x-remove'},
		'proxy_set_header X-Remove = "": the field is removed');
	ok(!defined $q->{header}{'user-agent'},
		'proxy_set_header User-Agent = "": a known field removed');
	is($q->{header}{'x-var'}, 'GET|42|127.0.0.1|front.test|/set/a',
		'proxy_set_header: $variables in the value');
	is(count_field($q, 'X-Var'), 1,
		'proxy_set_header: replaces the client\'s field');
	is($q->{header}{'x-keep'}, 1, 'proxy_set_header: other fields pass');

	one(req('GET', '/other/a') =~ s/Host: localhost/Host: kept.test/r);
	$q = seen($b1, qr{^/other/a});
	is($q->{header}{host}, 'kept.test',
		'proxy_set_header without Host: Host preserved');
	is($q->{header}{'x-added'}, 'yes', 'proxy_set_header: a field added');
}

# ---- hop-by-hop fields, request side -------------------------------------
{
	one(req('GET', '/hop1', 'Connection: keep-alive, X-Conn-Named, TE',
		'X-Conn-Named: 1', 'Keep-Alive: timeout=5', 'TE: trailers',
		'Upgrade: h2c', 'Proxy-Connection: keep-alive',
		'X-End-To-End: 1'));
	my $q = seen($b1, qr{^/hop1});
	my %n = map { $_ => 1 } names($q);
	for my $f (qw(connection x-conn-named keep-alive te upgrade
		proxy-connection)) {
		ok(!$n{$f}, "request: hop-by-hop $f not forwarded");
	}
	is($q->{header}{'x-end-to-end'}, 1, 'request: end-to-end field kept');

	one(req('POST', '/hop2', 'Transfer-Encoding: chunked')
		. "3\r\nabc\r\n0\r\n\r\n");
	$q = seen($b1, qr{^/hop2});
	is(count_field($q, 'Transfer-Encoding'), 1,
		'request: one Transfer-Encoding (the proxy\'s own framing)');
	is($q->{body}, 'abc', 'request: the chunked body');
}

# ---- hop-by-hop fields, response side ------------------------------------
{
	my $h = join '&', map { "h=$_" } 'Connection:%20X-Named-Hop',
		'X-Named-Hop:%201', 'Keep-Alive:%20timeout=5',
		'TE:%20trailers', 'Upgrade:%20h2c',
		'Proxy-Connection:%20keep-alive', 'X-Resp-E2E:%201';
	my $s = conn();
	write_all($s, req('GET', "/headers?$h"));
	my $rr = read_responses($s, 1);
	my $r = $rr->{responses}[0] // { headers => {} };
	is($r->{status}, 200, 'response with hop-by-hop fields: 200');
	for my $f (qw(x-named-hop keep-alive te upgrade proxy-connection)) {
		ok(!exists $r->{headers}{$f},
			"response: hop-by-hop $f not relayed");
	}
	ok(!exists $r->{headers}{connection}
		|| $r->{headers}{connection} !~ /x-named-hop/i,
		'response: the backend\'s Connection not relayed');
	is($r->{headers}{'x-resp-e2e'}, 1, 'response: end-to-end field kept');

	# the backend closes its connection; the client's stays open
	write_all($s, req('GET', '/headers?h=Connection:%20close'));
	$rr = read_responses($s, 1);
	$r = $rr->{responses}[0] // { headers => {} };
	is($r->{status}, 200, 'backend "Connection: close": 200');
	ok(($r->{headers}{connection} // '') !~ /close/i,
		'backend "Connection: close": not passed to the client');
	write_all($s, req('GET', '/after-close'));
	$rr = read_responses($s, 1);
	is($rr->{responses}[0]{headers}{'x-backend'}, 'b1',
		'the client\'s keep-alive connection outlives the backend\'s');
	close $s;
}

# ---- X-Forwarded-*, Forwarded, Via ---------------------------------------
{
	one(req('GET', '/xff1', 'X-Forwarded-For: 10.0.0.1',
		'X-Forwarded-For: 10.0.0.2'));
	my $q = seen($b1, qr{^/xff1});
	is($q->{header}{'x-forwarded-for'}, '10.0.0.1, 10.0.0.2, 127.0.0.1',
		'X-Forwarded-For: the client appended to the existing ones');
	is(count_field($q, 'X-Forwarded-For'), 1, 'X-Forwarded-For: one field');
	is($q->{header}{'x-forwarded-proto'}, 'http', 'X-Forwarded-Proto: http');
	is($q->{header}{'x-forwarded-host'}, 'localhost', 'X-Forwarded-Host');
	ok(!defined $q->{header}{forwarded} && !defined $q->{header}{via},
		'default (x-forwarded): no Forwarded, no Via');

	one(req('GET', '/xff2', 'X-Forwarded-Proto: https',
		'X-Forwarded-Host: evil.test'));
	$q = seen($b1, qr{^/xff2});
	is($q->{header}{'x-forwarded-proto'}, 'http',
		'X-Forwarded-Proto: the client\'s own is replaced');
	is($q->{header}{'x-forwarded-host'}, 'localhost',
		'X-Forwarded-Host: the client\'s own is replaced');

	one(req('GET', '/rfc/a', 'Forwarded: for=10.0.0.1',
		'X-Forwarded-For: 10.9.9.9'));
	$q = seen($b1, qr{^/rfc/a});
	is($q->{header}{forwarded},
		'for=10.0.0.1, for=127.0.0.1;proto=http;host="localhost"',
		'forwarded = "rfc7239": Forwarded appended');
	is($q->{header}{'x-forwarded-for'}, '10.9.9.9',
		'forwarded = "rfc7239": X-Forwarded-For left as sent');
	ok(!defined $q->{header}{'x-forwarded-proto'},
		'forwarded = "rfc7239": no X-Forwarded-Proto');

	one(req('GET', '/both/a'));
	$q = seen($b1, qr{^/both/a});
	is($q->{header}{forwarded}, 'for=127.0.0.1;proto=http;host="localhost"',
		'forwarded = "both": Forwarded');
	is($q->{header}{'x-forwarded-for'}, '127.0.0.1',
		'forwarded = "both": X-Forwarded-For');
	is($q->{header}{'x-forwarded-proto'}, 'http',
		'forwarded = "both": X-Forwarded-Proto');

	one(req('GET', '/off/a', 'X-Forwarded-For: 10.0.0.1'));
	$q = seen($b1, qr{^/off/a});
	is($q->{header}{'x-forwarded-for'}, '10.0.0.1',
		'forwarded = "off": X-Forwarded-For passed as sent');
	ok(!defined $q->{header}{forwarded}
		&& !defined $q->{header}{'x-forwarded-proto'}
		&& !defined $q->{header}{'x-forwarded-host'},
		'forwarded = "off": nothing added');

	one(req('GET', '/via/a', 'Via: 1.0 fred'));
	$q = seen($b1, qr{^/via/a});
	is($q->{header}{via}, '1.0 fred, 1.1 portier', 'via = true: appended');
	is(count_field($q, 'Via'), 1, 'via = true: one Via');
	one("GET /via/b HTTP/1.0\r\n\r\n", until_eof => 1);
	is(seen($b1, qr{^/via/b})->{header}{via}, '1.0 portier',
		'via = true: the client\'s protocol version');
}

# ---- hide_header, Server, Date -------------------------------------------
{
	my ($r) = one(req('GET',
		'/hide/a?h=X-Secret:%20s&h=X-Other:%20o&h=X-Shown:%201'));
	ok(!exists $r->{headers}{'x-secret'}, 'hide_header: X-Secret hidden');
	ok(!exists $r->{headers}{'x-other'},
		'hide_header: names match case-insensitively');
	is($r->{headers}{'x-shown'}, 1, 'hide_header: other fields shown');
	($r) = one(req('GET', '/headers?h=X-Secret:%20s'));
	is($r->{headers}{'x-secret'}, 's',
		'hide_header: only where it is set');

	($r) = one(req('GET', '/server'));
	my @server = grep { lc $_->[0] eq 'server' } @{ $r->{header_list} };
	is(scalar @server, 1, 'one Server field');
	is($server[0][1], 'portier',
		'the backend\'s Server is not leaked (portier\'s own)');
	my @date = grep { lc $_->[0] eq 'date' } @{ $r->{header_list} };
	is(scalar @date, 1, 'one Date field');
	($r) = one(req('GET', '/headers?h=X-Powered-By:%20x&h=Server:%20two'));
	is(scalar(grep { lc $_->[0] eq 'server' } @{ $r->{header_list} }), 1,
		'a second backend Server is not leaked either');
}

# ---- chunked request bodies, Expect: 100-continue ------------------------
{
	my $data = join '', map { chr(($_ * 13 + 7) & 255) } 0 .. 299_999;
	my $f = $t->write_file('up.bin', $data);
	SKIP: {
		skip 'no curl', 3 unless $has_curl;
		my ($out) = curl('-H "Transfer-Encoding: chunked"',
			"--data-binary \@$f",
			"'http://127.0.0.1:" . $t->port(0) . "/sha1?curl-chunked'");
		is($out, sha1_hex($data) . " 300000\n",
			'curl chunked upload: the body reaches the backend intact');
		my $q = seen($b1, qr{^/sha1\?curl-chunked});
		is($q->{header}{'transfer-encoding'}, 'chunked',
			'chunked upload: chunked to the backend');
		($out) = curl('-H "Expect: 100-continue"',
			"--data-binary \@$f",
			"'http://127.0.0.1:" . $t->port(0) . "/sha1?curl-expect'");
		is($out, sha1_hex($data) . " 300000\n",
			'curl with Expect: 100-continue');
	}

	# chunk extensions and trailers: the data arrives, re-framed
	my ($r) = one(req('POST', '/sha1?ext', 'Transfer-Encoding: chunked')
		. "5;name=val\r\nhello\r\n1;x\r\n \r\n5\r\nworld\r\n"
		. "0\r\nX-Trailer: t\r\n\r\n");
	is($r->{body}, sha1_hex('hello world') . " 11\n",
		'chunked with extensions and trailers: the data');

	# Expect: 100-continue by hand: one 100 (ours), then the answer
	my $s = conn();
	write_all($s, req('POST', '/sha1?expect', 'Content-Length: 5',
		'Expect: 100-continue'));
	my $cont = PortierTest::read_until($s, sub { $_[0] =~ /\r\n\r\n/ }, 5);
	like($cont, qr{^HTTP/1\.1 100 Continue\r\n\r\n\z},
		'Expect: 100-continue: 100 before the body');
	write_all($s, 'hello');
	my $rr = read_responses($s, 1);
	$r = $rr->{responses}[0] // {};
	is($r->{status}, 200, 'Expect: then the final answer');
	is($r->{body}, sha1_hex('hello') . " 5\n",
		'Expect: the body reached the backend');
	unlike($rr->{rest} . ($r->{raw} // ''), qr{ 100 Continue},
		'Expect: only one 100 (the backend\'s is not relayed)');
	ok(!defined seen($b1, qr{^/sha1\?expect})->{header}{expect},
		'Expect is not forwarded (the proxy answered it)');
	close $s;
}

# ---- chunked and close-delimited responses -------------------------------
{
	my $n = 100_000;
	my ($r) = one(req('GET', "/ch?size=$n&chunked=1&piece=1000"));
	is($r->{headers}{'transfer-encoding'}, 'chunked',
		'chunked response to HTTP/1.1: chunked');
	is(scalar(grep { lc $_->[0] eq 'transfer-encoding' }
		@{ $r->{header_list} }), 1,
		'chunked response to HTTP/1.1: one Transfer-Encoding (ours)');
	ok(!exists $r->{headers}{'content-length'},
		'chunked response to HTTP/1.1: no Content-Length');
	ok($r->{body} eq PortierBackend::pattern(0, $n),
		'chunked response to HTTP/1.1: the body, re-chunked');

	($r) = one(req('GET', "/ch?size=$n&chunked=1&trailers=1"));
	ok($r->{body} eq PortierBackend::pattern(0, $n),
		'chunked response with trailers: the body');

	my $s = conn();
	write_all($s, "GET /ch10?size=$n&chunked=1 HTTP/1.0\r\nHost: x\r\n\r\n");
	my $rr = read_responses($s, 1, until_eof => 1);
	$r = PortierTest::parse_response($rr->{rest});
	like($r->{raw}, qr{^HTTP/1\.1 200 }, 'chunked response to HTTP/1.0: 200');
	ok(!exists $r->{headers}{'transfer-encoding'},
		'chunked response to HTTP/1.0: not chunked');
	ok($rr->{eof} && $r->{body} eq PortierBackend::pattern(0, $n),
		'chunked response to HTTP/1.0: the body, delimited by the close');
	close $s;

	# close-delimited backend bodies
	$s = conn();
	write_all($s, req('GET', "/cl?size=$n&close=1"));
	$rr = read_responses($s, 1, timeout => 10);
	$r = $rr->{responses}[0] // { headers => {}, body => '' };
	is($r->{headers}{'transfer-encoding'}, 'chunked',
		'close-delimited backend body to HTTP/1.1: chunked');
	ok($r->{body} eq PortierBackend::pattern(0, $n),
		'close-delimited backend body to HTTP/1.1: the body');
	write_all($s, req('GET', '/cl-after'));
	$rr = read_responses($s, 1);
	is($rr->{responses}[0]{headers}{'x-backend'}, 'b1',
		'close-delimited backend body: the client connection is kept');
	close $s;

	($r, $rr) = one("GET /cl10?size=$n&close=1 HTTP/1.0\r\n\r\n",
		until_eof => 1);
	ok($rr->{eof} && !exists $r->{headers}{'transfer-encoding'}
		&& $r->{body} eq PortierBackend::pattern(0, $n),
		'close-delimited backend body to HTTP/1.0: delimited by the close');

	($r) = one(req('GET', '/ch?size=0&chunked=1'));
	is($r->{status} . '|' . $r->{body}, '200|',
		'an empty chunked body');
}

# ---- large bodies both ways ----------------------------------------------
for my $n (10 << 20, 100 << 20) {
	my $mib = $n >> 20;
	# download with a length
	my $s = conn();
	write_all($s, req('GET', "/big?size=$n"));
	my ($sha, $len, $head) = (Digest::SHA->new(1), 0, '');
	my $sel = IO::Select->new($s);
	my $buf = '';
	while ($sel->can_read(20)) {
		my $k = sysread($s, $buf, 1 << 20, length $buf);
		last unless $k;
		if (!length $head) {
			my $i = index($buf, "\r\n\r\n");
			next if $i < 0;
			$head = substr($buf, 0, $i + 4, '');
		}
		$len += length $buf;
		$sha->add($buf);
		$buf = '';
		last if $len >= $n;
	}
	like($head, qr/^Content-Length: $n\r$/mi, "$mib MiB download: length");
	is($len, $n, "$mib MiB download: every byte");
	is($sha->hexdigest, PortierBackend::pattern_sha1($n),
		"$mib MiB download: sha1");
	close $s;

	# chunked download
	$s = conn();
	write_all($s, req('GET', "/bigch?size=$n&chunked=1"));
	my $dec = chunk_decoder();
	($head, $buf) = ('', '');
	while ($sel = IO::Select->new($s), $sel->can_read(20)) {
		my $k = sysread($s, $buf, 1 << 20, length $buf);
		last unless $k;
		if (!length $head) {
			my $i = index($buf, "\r\n\r\n");
			next if $i < 0;
			$head = substr($buf, 0, $i + 4, '');
		}
		last if $dec->(\$buf);
	}
	my $d = $dec->();
	is("$d->{len} $d->{sha1}", "$n " . PortierBackend::pattern_sha1($n),
		"$mib MiB chunked download: re-chunked, every byte");
	ok($d->{done}, "$mib MiB chunked download: the last chunk");
	close $s;

	# upload with a length, and chunked
	for my $chunked (0, 1) {
		my $what = $chunked ? 'chunked upload' : 'upload';
		$s = conn();
		write_all($s, req('POST', "/sha1?up$mib-$chunked",
			$chunked ? 'Transfer-Encoding: chunked'
				: "Content-Length: $n"));
		my $next = PortierBackend::pattern_stream($n, 1 << 20);
		my $ok = 1;
		while (defined(my $p = $next->())) {
			$p = sprintf("%x\r\n", length $p) . $p . "\r\n" if $chunked;
			$ok &&= write_all($s, $p);
		}
		$ok &&= write_all($s, "0\r\n\r\n") if $chunked;
		my $rr = read_responses($s, 1, timeout => 30);
		my $r = $rr->{responses}[0] // {};
		ok($ok, "$mib MiB $what: sent");
		is($r->{body}, PortierBackend::pattern_sha1($n) . " $n\n",
			"$mib MiB $what: sha1 at the backend");
		close $s;
	}
}

# ---- invalid backend responses: 502, never relayed -----------------------
{
	# what a backend may send that still has one meaning: relayed as such
	my %valid = (
		# RFC 9110 8.6: a list of equal values may be read as one
		cl_list => sub { $_[0]{status} == 200 && $_[0]{body} eq 'hello'
			&& $_[0]{headers}{'content-length'} eq '5' },
		# interim answers are not relayed, the final one is
		early_hints => sub { $_[0]{status} == 200
			&& $_[0]{body} eq 'hello' && $_[0]{raw} !~ /\b103\b/ },
	);
	# the head is valid, the body is not what it said: see below
	my %streamed = map { $_ => 1 } qw(short_body long_body);
	for my $name ('garbage', sort keys %PortierBackend::BAD) {
		next if $streamed{$name};
		my $path = $name eq 'garbage' ? '/x/garbage' : "/x/bad/$name";
		my $before = () = $b1->requests;
		my ($r) = one(req('GET', $path), timeout => 10);
		if ($valid{$name}) {
			ok($valid{$name}->($r), "/bad/$name: relayed as one clean "
				. 'response') or diag($r->{raw});
			next;
		}
		is($r->{status}, 502, "invalid response ($name): 502");
		unlike($r->{raw}, qr/hello|GARBAGE|X-A:|X-Big|X-H1:|Link:/,
			"invalid response ($name): nothing of it relayed");
		my $after = () = $b1->requests;
		is($after - $before, 1, "invalid response ($name): asked once");
	}

	# a body shorter than its length: the head went out, the client
	# sees the connection end before the announced length
	my ($r, $rr) = one(req('GET', '/x/bad/short_body'), timeout => 10);
	ok($rr->{eof} && !@{ $rr->{responses} }
		&& $rr->{rest} =~ /^HTTP\/1\.1 200 .*\r\n\r\nhello\z/s,
		'short body: the response is cut, visibly incomplete');

	# a body longer than its length: the excess is never relayed (it
	# could pass for the next response)
	my $s = conn();
	write_all($s, req('GET', '/x/bad/long_body'));
	$rr = read_responses($s, 1, timeout => 10);
	$r = $rr->{responses}[0] // { headers => {} };
	is("$r->{status} $r->{body}", '200 hello',
		'long body: the announced length only');
	write_all($s, req('GET', '/x/after-long'));
	$rr = read_responses($s, 1, timeout => 10);
	$r = $rr->{responses}[0] // { headers => {} };
	ok($r->{status} == 200 && $r->{headers}{'x-backend'} eq 'b1'
		&& $rr->{rest} eq '' && $r->{raw} !~ /more bytes/,
		'long body: the excess does not reach the next response');
	close $s;

	($r) = one(req('GET', '/x/after-bad'));
	is($r->{status}, 200, 'the worker serves on after invalid responses');
	my $log = $t->read_file('error.log') // '';
	like($log, qr/transfer coding other than chunked/,
		'the error log says why (te_not_chunked)');
}

# ---- keep-alive to the backend -------------------------------------------
{
	one(req('GET', '/ka-warm'));
	$b1->clear;
	my %conns;
	for my $i (1 .. 30) {
		my ($r) = one(req('GET', "/ka$i"));
		$conns{ $r->{headers}{'x-conn'} // '?' }++;
	}
	my @q = $b1->wait_requests(30);
	is(scalar @q, 30, 'keep-alive: 30 requests reached the backend');
	cmp_ok($b1->connections, '<=', 1,
		'keep-alive: at most one new backend connection for 30 requests');
	is(scalar keys %conns, 1, 'keep-alive: all on one backend connection');

	# a client that pipelines: each request framed on its own
	$b1->clear;
	my $s = conn();
	write_all($s, req('GET', '/pipe1') . req('POST', '/sha1?pipe2',
		'Content-Length: 3') . 'abc' . req('GET', '/pipe3'));
	my $rr = read_responses($s, 3);
	is(join(' ', map { $_->{status} } @{ $rr->{responses} }), '200 200 200',
		'pipelined client: three answers');
	is($rr->{responses}[1]{body}, sha1_hex('abc') . " 3\n",
		'pipelined client: the body went with its request');
	is(join(' ', map { $_->{path} } $b1->requests), '/pipe1 /sha1 /pipe3',
		'pipelined client: three requests at the backend, in order');
	close $s;
}

# ---- the access log: $upstream_* -----------------------------------------
{
	sub log_lines { split /\n/, $t->read_file('up.log') // '' }
	sub wait_line {
		my ($re) = @_;
		my $found;
		PortierTest::wait_for(sub {
			($found) = grep { $_ =~ $re } log_lines();
			defined $found;
		}, 10);
		return $found // '';
	}
	my $p1 = $t->port(1);
	my $p3 = $t->port(3);
	one(req('GET', '/log/a'));
	my $l = wait_line(qr{^/log/a\|});
	like($l, qr{^/log/a\|200\|127\.0\.0\.1:$p1\|200\|\d+\.\d{3}\|\d+\.\d{3}$},
		'access log: $upstream_addr, _status, _response_time, '
		. '_connect_time');
	one(req('GET', '/log/b'));
	like(wait_line(qr{^/log/b\|}), qr{\|0\.000$},
		'access log: $upstream_connect_time of a kept-alive connection');
	one(req('GET', '/log/status/503'));
	like(wait_line(qr{^/log/status/503\|}), qr{^/log/status/503\|503\|[^|]+\|503\|},
		'access log: $upstream_status is the backend\'s');

	# a refused peer, then the next: both attempts listed
	my $two = '';
	for my $i (1 .. 4) {
		my ($r) = one(req('GET', "/two/$i"));
		is($r->{status}, 200, "upstream with a refused peer: 200 ($i)");
		my $line = wait_line(qr{^/two/$i\|});
		$two = $line if $line =~ /, /;
	}
	like($two, qr{^/two/\d\|200\|127\.0\.0\.1:$p3, 127\.0\.0\.1:$p1\|502, 200\|\d+\.\d{3}, \d+\.\d{3}\|-, \d+\.\d{3}$},
		'access log: every attempt listed ("a, b"), - for no connection');
	one(req('GET', '/no-log-here'));
	one(req('GET', '/log/last'));
	wait_line(qr{^/log/last\|});
	ok(!grep({ m{no-log-here} } log_lines()),
		'access log: only the locations that set it');
}

# ---- bounded memory: 1 GiB to a slow client, from a slow client ----------
sub fds_of {
	opendir my $d, "/proc/$_[0]/fd" or return 0;
	my $n = grep { /^\d+$/ } readdir $d;
	closedir $d;
	return $n;
}
{
	my $gib = 1 << 30;
	one(req('GET', '/warm?size=1000000'));
	my $base = rss_kib($worker);
	my $fds = fds_of($worker);
	my $s = $t->slow_get("/mem?size=$gib");
	my ($buf, $max, $sel) = ('', $base, IO::Select->new($s));
	for (1 .. 150) {
		last unless $sel->can_read(10);
		last unless sysread($s, $buf, 16384, length $buf);
		my $rss = rss_kib($worker) // 0;
		$max = $rss if $rss > $max;
		# a slow client: read again only once portier has filled our
		# receive buffer, so that it waits on us all the time
		PortierTest::wait_for(sub { rx_queue($s) >= 8192 }, 5);
	}
	my ($head, $body) = PortierTest::split_response($buf);
	like($head, qr/^Content-Length: $gib\r$/mi, '1 GiB download: the head');
	ok(length $body > 0 && $body eq PortierBackend::pattern(0, length $body),
		'1 GiB download: the bytes read so far are right');
	cmp_ok($max - $base, '<', 20 * 1024,
		sprintf('1 GiB download to a slow client: worker RSS grew by '
			. '%d KiB (< 20 MiB)', $max - $base));
	close $s;
	ok(PortierTest::wait_for(sub { fds_of($worker) <= $fds }, 10),
		'1 GiB download abandoned: the backend connection is closed');

	# an upload the backend reads slowly
	$b1->clear;
	$base = rss_kib($worker);
	$s = conn();
	write_all($s, req('POST', '/sha1?memup&read_delay=10&read_piece=65536',
		"Content-Length: $gib"));
	$s->blocking(0);
	my $next = PortierBackend::pattern_stream($gib, 65536);
	my ($pend, $sent) = ('', 0);
	$max = $base;
	$sel = IO::Select->new($s);
	my $end = time() + 3;
	while (time() < $end) {
		$pend = $next->() unless length $pend;
		if ($sel->can_write(0.05)) {
			my $n = syswrite($s, $pend);
			if (defined $n) {
				substr($pend, 0, $n, '');
				$sent += $n;
			}
		}
		my $rss = rss_kib($worker) // 0;
		$max = $rss if $rss > $max;
	}
	cmp_ok($sent, '>', 1 << 20, sprintf('1 GiB upload: under way '
		. '(%d MiB sent)', $sent >> 20));
	cmp_ok($sent, '<', 200 << 20,
		'1 GiB upload: the client is held back by the slow backend');
	cmp_ok($max - $base, '<', 20 * 1024,
		sprintf('1 GiB upload to a slow backend: worker RSS grew by '
			. '%d KiB (< 20 MiB)', $max - $base));
	close $s;
	my @q;
	PortierTest::wait_for(sub {
		@q = grep { $_->{target} =~ /memup/ } $b1->requests;
		return @q;
	}, 30);
	ok(@q && $q[0]{error}, '1 GiB upload abandoned: the backend sees the '
		. 'request end (its connection closed)');
	my ($r) = one(req('GET', '/after-mem'));
	is($r->{status}, 200, 'the worker serves on');
}

# A decoder of a chunked body fed piece by piece (a reference to a
# buffer, emptied): true once the last chunk came. Called without an
# argument: { len, sha1, done }.
sub chunk_decoder {
	my ($sha, $len, $state, $want, $pend) = (Digest::SHA->new(1), 0,
		'size', 0, '');
	return sub {
		my ($in) = @_;
		return { len => $len, sha1 => $sha->hexdigest,
			done => $state eq 'done' } unless $in;
		$pend .= $$in;
		$$in = '';
		while ($state ne 'done') {
			if ($state eq 'size') {
				last unless $pend =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//;
				$want = hex $1;
				$state = $want ? 'data' : 'done';
			} elsif ($state eq 'data') {
				my $take = substr($pend, 0, $want, '');
				last unless length $take;
				$sha->add($take);
				$len += length $take;
				$want -= length $take;
				$state = 'crlf' unless $want;
			} else {
				last if length $pend < 2;
				substr($pend, 0, 2, '') eq "\r\n" or die 'bad chunk';
				$state = 'size';
			}
		}
		return $state eq 'done';
	};
}

done_testing();
