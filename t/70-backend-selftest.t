#!/usr/bin/perl
# The test backend of the proxy tests (t/lib/PortierBackend.pm), checked
# on its own: clients talk to it directly (raw sockets and curl), no
# portier involved. If this fails, a proxy test's failure says nothing
# about the proxy.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use Digest::SHA qw(sha1_hex);
use Errno qw(ECONNRESET);
use IO::Select;
use IO::Socket::INET;
use PortierTest;
use PortierHTTP;
use PortierBackend;
use PortierTLS;
use IO::Socket::SSL;
use Test::More;
use Time::HiRes qw(time);

my $t = PortierTest->new;
my $b1 = PortierBackend->new(name => 'b1', dir => $t->dir);
my $b2 = PortierBackend->new(name => 'b2', dir => $t->dir,
	port => $t->port(1));
is($b2->port, $t->port(1), 'a port chosen by the harness is used');
my $has_curl = -x '/usr/bin/curl' || `sh -c 'command -v curl'` ne '';

sub conn { connect_raw($t, port => $_[0]->port) }

sub req {
	my ($method, $target, @h) = @_;
	return "$method $target HTTP/1.1\r\nHost: localhost\r\n"
		. join('', map { "$_\r\n" } @h) . "\r\n";
}

# One request on a new connection; the parsed response and the raw
# reading result.
sub one {
	my ($b, $bytes, %o) = @_;
	my $s = conn($b);
	write_all($s, $bytes);
	my $r = read_responses($s, 1, %o);
	# a body delimited by the close stays in "rest"
	my $resp = $r->{responses}[0] // ($r->{eof} && length $r->{rest}
		? PortierTest::parse_response($r->{rest}) : undef);
	return ($resp, $r);
}

sub curl {
	my (@args) = @_;
	my $out = `curl -s --max-time 10 @args`;
	return ($out, $? >> 8);
}

# ---- default answer, names, status ---------------------------------------------
{
	my ($r) = one($b1, req('GET', '/'));
	is($r->{status}, 200, 'default: 200');
	is($r->{headers}{'x-backend'}, 'b1', 'default: X-Backend names it');
	is($r->{body}, "b1\n", 'default: the body is the name');
	($r) = one($b2, req('GET', '/anything/else'));
	is($r->{body}, "b2\n", 'the second backend answers with its name');
	for my $st (404, 503, 302) {
		($r) = one($b1, req('GET', "/status/$st"));
		is($r->{status}, $st, "/status/$st");
	}
	($r) = one($b1, req('GET', '/prefix/kept/status/418'));
	is($r->{status}, 418, 'a command after a prefix is found');
	($r) = one($b1, req('GET', '/headers?h=X-A:%20one&h=Keep-Alive:'
		. 'timeout=5&h=X-A:two'));
	is($r->{headers}{'x-a'}, 'one, two', '?h= adds headers, repeatable');
	is($r->{headers}{'keep-alive'}, 'timeout=5', '?h= hop-by-hop header');
}

# ---- keep-alive, request log, connection count ---------------------------------
{
	$b1->clear;
	my $s = conn($b1);
	write_all($s, req('GET', '/k1?x=1&y=%41', 'X-Raw:  two  spaces'));
	my $r = read_responses($s, 1);
	is($r->{responses}[0]{headers}{'x-seq'}, 1, 'keep-alive: first');
	write_all($s, req('POST', '/k2', 'Content-Length: 5') . 'hello'
		. req('HEAD', '/k3') . req('GET', '/status/204')
		. req('GET', '/k5', 'Connection: close'));
	$r = read_responses($s, 4, head_only => [0, 1, 0, 0], until_eof => 1);
	my @st = map { "$_->{status}:" . ($_->{headers}{'x-seq'} // '') }
		@{ $r->{responses} };
	is("@st", '200:2 200:3 204:4 200:5', 'keep-alive: pipelined, in order');
	is($r->{responses}[1]{headers}{'content-length'}, 3,
		'HEAD: the length of the GET');
	is($r->{responses}[1]{body}, '', 'HEAD: no body');
	is($r->{responses}[3]{headers}{connection}, 'close',
		'Connection: close is answered with close');
	ok($r->{eof}, 'and the backend closes');
	is($r->{rest}, '', 'nothing after the last response');
	my @q = $b1->requests;
	is(scalar @q, 5, 'log: five requests');
	is($b1->connections, 1, 'log: one connection');
	is(join(' ', map { "$_->{method} $_->{seq}" } @q),
		'GET 1 POST 2 HEAD 3 GET 4 GET 5', 'log: methods and sequence');
	is($q[0]{target}, '/k1?x=1&y=%41', 'log: raw target');
	is($q[0]{query}{y}, 'A', 'log: decoded query');
	is($q[0]{raw_headers}[1], 'X-Raw:  two  spaces', 'log: raw header line');
	is($q[0]{header}{'x-raw'}, 'two  spaces', 'log: header value');
	is($q[1]{body}, 'hello', 'log: small body kept');
	is($q[1]{body_length}, 5, 'log: body length');
	is($q[1]{body_sha1}, sha1_hex('hello'), 'log: body sha1');
	like($q[0]{peer}, qr/^127\.0\.0\.1:\d+$/, 'log: peer address');
	is($q[0]{version}, 'HTTP/1.1', 'log: version');
}

# ---- sizes, framing, trailers --------------------------------------------------
{
	my ($r) = one($b1, req('GET', '/?size=100000'));
	is($r->{headers}{'content-length'}, 100000, 'size: Content-Length');
	ok($r->{body} eq PortierBackend::pattern(0, 100000),
		'size: the pattern');
	is(PortierBackend::pattern(65520, 32),
		"00000000000fff0\n000000000010000\n",
		'pattern: lines name their offset across a block');
	my $n = 10 << 20;
	my $s = conn($b1);
	write_all($s, req('GET', "/big?size=$n&chunked=1&trailers=1&piece=50000"));
	my $raw = PortierTest::read_until($s, sub { $_[0] =~ /\r\n0\r\n.*\r\n\r\n\z/s }, 15);
	my ($head, $body) = PortierTest::split_response($raw);
	like($head, qr/^Transfer-Encoding: chunked\r$/mi, '10 MiB: chunked');
	my ($sha, $len, $chunks, $trailer) = (Digest::SHA->new(1), 0, 0, '');
	while ($body =~ /\G([0-9a-f]+)\r\n/gc) {
		my $size = hex $1;
		if ($size == 0) {
			($trailer) = substr($body, pos($body)) =~ /^(.*?)\r\n\r\n/s;
			last;
		}
		$sha->add(substr($body, pos($body), $size));
		$len += $size;
		$chunks++;
		pos($body) = pos($body) + $size + 2;
	}
	is($len, $n, '10 MiB: length');
	is($sha->hexdigest, PortierBackend::pattern_sha1($n), '10 MiB: content');
	is($chunks, int(($n + 49999) / 50000), '10 MiB: chunks of ?piece bytes');
	is($trailer, "X-Trailer: end\r\nX-Body-Length: $n", 'trailers');
	($r, my $rr) = one($b1, req('GET', '/?size=5000&close=1'), until_eof => 1);
	ok(!exists $r->{headers}{'content-length'}
		&& !exists $r->{headers}{'transfer-encoding'}, 'close=1: no length');
	ok($rr->{eof} && $r->{body} eq PortierBackend::pattern(0, 5000),
		'close=1: body ended by the close');
	SKIP: {
		skip 'no curl', 1 unless $has_curl;
		my ($out) = curl("'" . $b1->url("/?size=3000000") . "'");
		is(sha1_hex($out), PortierBackend::pattern_sha1(3000000),
			'curl: 3 MB with Content-Length');
	}
}

# ---- delays -----------------------------------------------------------------------
{
	my $t0 = time();
	my ($r) = one($b1, req('GET', '/?delay=300'));
	my $el = time() - $t0;
	ok($r->{status} == 200 && $el >= 0.29 && $el < 3,
		sprintf('delay=300: answered after %.2f s', $el));
	my $s = conn($b1);
	$t0 = time();
	write_all($s, req('GET', '/?size=30&piece=10&body_delay=200'));
	my $t_head;
	my $raw = PortierTest::read_until($s, sub {
		$t_head //= time() - $t0 if $_[0] =~ /\r\n\r\n/;
		PortierTest::response_length($_[0]) }, 5);
	my $t_all = time() - $t0;
	ok($t_head < 0.2 && $t_all >= 0.39
		&& PortierTest::parse_response($raw)->{body}
			eq PortierBackend::pattern(0, 30),
		sprintf('body_delay: head at %.2f s, body done at %.2f s',
			$t_head, $t_all));
}

# ---- echo, sha1, uploads -------------------------------------------------------------
{
	my $req = req('PUT', '/echo?x=1', 'X-Mixed-Case: V', 'Content-Length: 11');
	my ($r) = one($b1, $req . 'hello world');
	is($r->{status}, 200, 'echo: 200');
	is($r->{body}, $req . 'hello world', 'echo: head as received, then body');
	is($r->{headers}{'x-echo-method'}, 'PUT', 'echo: method header');
	my $chunked = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n";
	($r) = one($b1, req('POST', '/echo?body_only=1',
		'Transfer-Encoding: chunked') . $chunked);
	is($r->{headers}{'transfer-encoding'}, 'chunked',
		'echo: a chunked body is echoed chunked');
	is($r->{body}, 'hello world', 'echo: body_only, chunked decoded');
	my ($q) = grep { $_->{path} eq '/echo' && $_->{method} eq 'POST' }
		$b1->requests;
	is_deeply($q->{trailers}, [['X-T', '1']], 'log: request trailers');

	my $data = join '', map { chr(($_ * 7) & 255) } 0 .. 999_999;
	my $s = conn($b1);
	write_all($s, req('POST', '/echo?body_only=1',
		'Content-Length: ' . length $data));
	# read while sending: the echo streams back before the body ends
	my ($off, $got, $sel) = (0, '', IO::Select->new($s));
	while ($off < length $data) {
		$off += syswrite($s, $data, 65536, $off) // 0;
		sysread($s, $got, 65536, length $got) while $sel->can_read(0);
	}
	$got .= PortierTest::read_until($s,
		sub { PortierTest::response_length($got . $_[0]) }, 10);
	$r = PortierTest::parse_response($got);
	ok($r->{body} eq $data, 'echo: 1 MB streamed back');

	($r) = one($b1, req('POST', '/sha1', 'Content-Length: 1000000') . $data);
	is($r->{body}, sha1_hex($data) . " 1000000\n", '/sha1 of the body');
	is($r->{headers}{'x-body-sha1'}, sha1_hex($data), '/sha1: header');

	my $t0 = time();
	($r) = one($b1, req('POST', '/sha1?read_delay=50&read_piece=10000',
		'Content-Length: 50000') . substr($data, 0, 50000));
	my $el = time() - $t0;
	ok($r->{body} eq sha1_hex(substr($data, 0, 50000)) . " 50000\n"
		&& $el >= 0.19, sprintf('read_delay: slow reader, %.2f s', $el));

	$s = conn($b1);
	write_all($s, req('POST', '/sha1', 'Content-Length: 5',
		'Expect: 100-continue'));
	my $cont = PortierTest::read_until($s, sub { $_[0] =~ /\r\n\r\n/ }, 5);
	like($cont, qr{^HTTP/1\.1 100 Continue\r\n\r\n\z}, 'Expect: 100 first');
	write_all($s, 'hello');
	$r = read_responses($s, 1)->{responses}[0];
	is($r->{body}, sha1_hex('hello') . " 5\n", 'then the answer');

	SKIP: {
		skip 'no curl', 2 unless $has_curl;
		my $f = $t->write_file('up.bin', $data x 5);
		my ($out) = curl("--data-binary \@$f", $b1->url('/sha1'));
		is($out, sha1_hex($data x 5) . " 5000000\n", 'curl: 5 MB upload');
		($out) = curl('-H "Transfer-Encoding: chunked"',
			"--data-binary \@$f", "'" . $b1->url('/echo?body_only=1') . "'");
		ok($out eq $data x 5, 'curl: 5 MB chunked upload echoed');
	}
}

# ---- early answers -------------------------------------------------------------------------
{
	my $s = conn($b1);
	write_all($s, req('POST', '/status/413?early=1',
		'Content-Length: 10000000') . ('x' x 100000));
	my $r = read_responses($s, 1);
	my $a = $r->{responses}[0];
	ok($a && $a->{status} == 413 && $a->{headers}{connection} eq 'close',
		'early=1: answered before the body, with close');
	# the backend keeps reading: the client can finish writing
	ok(write_all($s, 'x' x 1_000_000), 'early=1: the body is drained');
	my ($q) = grep { $_->{path} eq '/status/413' } $b1->requests;
	is($q->{body_length}, '-', 'early=1: logged as unread');
	close $s;
}

# ---- resets, garbage, malformed --------------------------------------------------------
{
	my $s = conn($b1);
	write_all($s, req('GET', '/reset'));
	IO::Select->new($s)->can_read(5);
	my $n = sysread($s, my $buf, 100);
	ok(!defined $n && $! == ECONNRESET, '/reset: the client sees a reset');

	$s = conn($b1);
	write_all($s, req('GET', '/reset_mid?size=100000&part=30000'));
	my $r = read_responses($s, 1, timeout => 5);
	ok($r->{reset}, '/reset_mid: reset');
	my $got = $r->{rest};
	like($got, qr/^Content-Length: 100000\r$/m, '/reset_mid: head sent');
	is(length($got) - index($got, "\r\n\r\n") - 4, 30000,
		'/reset_mid: then part of the body');

	SKIP: {
		skip 'no curl', 1 unless $has_curl;
		my (undef, $rc) = curl($b1->url('/reset'));
		is($rc, 56, 'curl: /reset is a receive failure');
	}
	(undef, $r) = one($b1, req('GET', '/garbage'), until_eof => 1);
	ok($r->{eof} && $r->{rest} =~ /^\0/ && !@{ $r->{responses} },
		'/garbage: not a response');
	for my $name (sort keys %PortierBackend::BAD) {
		my $raw = $t->raw(req('GET', "/bad/$name"), port => $b1->port);
		ok($raw eq $PortierBackend::BAD{$name},
			"/bad/$name sent as is");
	}
}

# ---- WebSocket -------------------------------------------------------------------------------
{
	my $ws = PortierBackend::ws_client(port => $b1->port, path => '/ws',
		headers => ['Sec-WebSocket-Protocol: chat, x']);
	is($ws->{status}, 101, 'ws: 101');
	ok($ws->{accept_ok}, 'ws: Sec-WebSocket-Accept is right');
	is($ws->{headers}{'sec-websocket-protocol'}, 'chat', 'ws: subprotocol');
	is(PortierBackend::ws_accept('dGhlIHNhbXBsZSBub25jZQ=='),
		's3pPLMBiTxaQ9kYGzzhZRbK+xOo=', 'ws: the RFC 6455 example key');
	$ws->send_text('hello');
	my $f = $ws->recv;
	ok($f && $f->{opcode} == 1 && $f->{payload} eq 'hello' && !$f->{masked},
		'ws: text echoed, unmasked');
	my $bin = join '', map { chr($_ & 255) } 0 .. 69_999;
	$ws->send_binary($bin);
	$f = $ws->recv;
	ok($f && $f->{opcode} == 2 && $f->{payload} eq $bin,
		'ws: 70000 bytes binary (64-bit length)');
	$ws->send('x' x 300, opcode => 1, fin => 0);
	$ws->send('y', opcode => 0, fin => 1);
	my ($f1, $f2) = ($ws->recv, $ws->recv);
	ok($f1 && !$f1->{fin} && $f2 && $f2->{opcode} == 0 && $f2->{fin}
		&& $f1->{payload} . $f2->{payload} eq ('x' x 300) . 'y',
		'ws: fragments echoed as fragments');
	$ws->ping('p1');
	$f = $ws->recv;
	ok($f && $f->{opcode} == 10 && $f->{payload} eq 'p1', 'ws: ping, pong');
	$f = $ws->close(1000, 'bye');
	ok($f && $f->{payload} eq pack('n', 1000) . 'bye', 'ws: close echoed');
	is(PortierTest::next_event($ws->sock, 5), 'eof', 'ws: then closed');

	my ($r) = one($b1, req('GET', '/ws'));
	is($r->{status}, 400, 'ws: not an upgrade, 400');
}

# ---- health ------------------------------------------------------------------------------------
{
	my ($r) = one($b2, req('GET', '/health'));
	is("$r->{status} $r->{body}", "200 ok\n", 'health: ok');
	$b2->set_health(0);
	($r) = one($b2, req('GET', '/health'));
	is("$r->{status} $r->{body}", "503 fail\n", 'set_health(0): fail');
	($r) = one($b2, req('GET', '/set_health?v=1'));
	($r) = one($b2, req('GET', '/health'));
	is($r->{status}, 200, '/set_health?v=1: ok again');
}

# ---- descriptors of the test are not kept by a backend ----------------------------------
{
	my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => 0,
		Listen => 1) or die;
	my $cl = IO::Socket::INET->new(PeerAddr => '127.0.0.1',
		PeerPort => $l->sockport) or die;
	my $sv = $l->accept;
	my $o = PortierBackend->new(name => 'fds', dir => $t->dir);
	close $sv;
	is(PortierTest::next_event($cl, 5), 'eof',
		'a socket the test closes is closed (not held by the backend)');
	$o->stop;
}

# ---- options ----------------------------------------------------------------------------------------
{
	my $o = PortierBackend->new(name => 'opt', dir => $t->dir,
		max_requests_per_conn => 2, idle_close_ms => 300);
	my $s = conn($o);
	write_all($s, req('GET', '/a') . req('GET', '/b') . req('GET', '/c'));
	my $r = read_responses($s, 3, until_eof => 1);
	is(scalar @{ $r->{responses} }, 2, 'max_requests_per_conn: 2 answers');
	is($r->{responses}[1]{headers}{connection}, 'close',
		'max_requests_per_conn: the last says close');
	ok($r->{eof}, 'max_requests_per_conn: closed');
	$s = conn($o);
	write_all($s, req('GET', '/a'));
	read_responses($s, 1);
	my $t0 = time();
	my $w = wait_eof($s, 5);
	ok($w->{eof} && $w->{bytes} == 0 && time() - $t0 >= 0.25,
		sprintf('idle_close_ms: closed when idle (%.2f s)', time() - $t0));
	$o->stop;

	$o = PortierBackend->new(name => 'c', dir => $t->dir, close_after => 1);
	($r, my $rr) = one($o, req('GET', '/'), until_eof => 1);
	ok($r->{headers}{connection} eq 'close' && $rr->{eof},
		'close_after: close');
	$o->stop;

	$o = PortierBackend->new(name => 'h10', dir => $t->dir, http10 => 1);
	($r, $rr) = one($o, req('GET', '/?chunked=1&size=10'), until_eof => 1);
	like($r->{raw}, qr{^HTTP/1\.0 200}, 'http10: 1.0');
	ok(!exists $r->{headers}{'transfer-encoding'} && $rr->{eof}
		&& $r->{body} eq PortierBackend::pattern(0, 10),
		'http10: no chunked, closed');
	$s = conn($o);
	write_all($s, req('GET', '/', 'Connection: keep-alive')
		. req('GET', '/', 'Connection: keep-alive'));
	$r = read_responses($s, 2);
	is(scalar @{ $r->{responses} }, 2, 'http10: keep-alive when asked');
	is($r->{responses}[0]{headers}{connection}, 'keep-alive',
		'http10: says keep-alive');
	$o->stop;
}

# ---- unix socket --------------------------------------------------------------------------------
{
	my $path = $t->dir . '/b.sock';
	my $u = PortierBackend->new(name => 'u1', dir => $t->dir, unix => $path);
	is($u->addr, "unix:$path", 'unix: addr');
	my $s = IO::Socket::UNIX->new(Peer => $path);
	ok($s, 'unix: connect');
	write_all($s, req('GET', '/') x 2);
	my $r = read_responses($s, 2);
	is(join('', map { $_->{body} } @{ $r->{responses} }), "u1\nu1\n",
		'unix: two answers on one connection');
	is(($u->requests)[0]{peer}, 'unix', 'unix: peer');
	SKIP: {
		skip 'no curl', 1 unless $has_curl;
		my ($out) = curl("--unix-socket $path", 'http://localhost/status/201',
			'-o /dev/null -w "%{http_code}"');
		is($out, 201, 'unix: curl');
	}
	$u->stop;
	ok(!-e $path, 'unix: socket removed at stop');
}

# ---- many concurrent keep-alive connections ----------------------------------------------------
{
	my $n = $ENV{BACKEND_CONNS} // 300;
	my $c = PortierBackend->new(name => 'many', dir => $t->dir);
	my @s = map { conn($c) } 1 .. $n;
	write_all($_, req('GET', '/')) for @s;
	my $ok = grep { (read_responses($_, 1)->{responses}[0]{body} // '')
		eq "many\n" } @s;
	write_all($_, req('GET', '/')) for @s;
	$ok += grep { (read_responses($_, 1)->{responses}[0]{body} // '')
		eq "many\n" } @s;
	is($ok, 2 * $n, "$n concurrent keep-alive connections, 2 requests each");
	is($c->connections, $n, "$n connections logged");
	my @q = $c->requests;
	is(scalar(grep { $_->{seq} == 2 } @q), $n, 'each reused once');
	close $_ for @s;
	$c->stop;
}

# ---- TLS ------------------------------------------------------------------------------------------------
{
	my $pki = PortierTLS->new($t->dir . '/pki');
	my ($crt, $key) = $pki->server('ec', 'backend.test');
	my @cli = $pki->client('alice');
	my $tb = PortierBackend->new(name => 'tls', dir => $t->dir,
		tls => { cert => $crt, key => $key });
	is(substr($tb->url('/x'), 0, 8), 'https://', 'tls: url() says https');
	my $cache = IO::Socket::SSL::Session_Cache->new(4);
	my $tls_conn = sub {
		my ($b, %o) = @_;
		return IO::Socket::SSL->new(PeerAddr => '127.0.0.1',
			PeerPort => $b->port, SSL_hostname => 'backend.test',
			SSL_ca_file => $pki->ca, SSL_session_cache => $cache,
			SSL_session_key => 'tls-' . $b->port, Timeout => 5, %o);
	};
	my $s = $tls_conn->($tb);
	ok($s, 'tls: a verified handshake') or diag($SSL_ERROR);
	write_all($s, req('GET', '/status/201')) if $s;
	my $r = $s ? read_responses($s, 1) : {};
	is($r->{responses}[0]{status}, 201, 'tls: a command answered');
	write_all($s, req('POST', '/sha1', 'Content-Length: 100000')
		. ('a' x 100000)) if $s;
	$r = $s ? read_responses($s, 1) : {};
	is($r->{responses}[0]{headers}{'x-body-sha1'}, sha1_hex('a' x 100000),
		'tls: a body read intact, on the same connection');
	close $s if $s;
	my @q = $tb->requests;
	is($q[0]{tls_sni}, 'backend.test', 'tls: the SNI name is logged');
	is($q[0]{tls_client}, '', 'tls: no client certificate');
	is($q[0]{tls_reused}, 0, 'tls: a full handshake first');
	is($q[1]{conn}, $q[0]{conn}, 'tls: keep-alive');
	$s = $tls_conn->($tb);
	write_all($s, req('GET', '/')) if $s;
	$r = $s ? read_responses($s, 1) : {};
	is($r->{responses}[0]{body}, "tls\n", 'tls: second connection');
	is(($tb->requests)[-1]{tls_reused}, 1, 'tls: its session was resumed');
	close $s if $s;

	my $mb = PortierBackend->new(name => 'mtls', dir => $t->dir,
		tls => { cert => $crt, key => $key, ca => $pki->ca });
	$s = $tls_conn->($mb);
	my $got = $s ? (write_all($s, req('GET', '/')) && read_responses($s, 1))
		: undef;
	ok(!$got || !@{ $got->{responses} // [] },
		'tls with ca: no client certificate, no answer');
	$s = $tls_conn->($mb, SSL_cert_file => $cli[0], SSL_key_file => $cli[1]);
	ok($s, 'tls with ca: a client certificate is taken');
	write_all($s, req('GET', '/')) if $s;
	$r = $s ? read_responses($s, 1) : {};
	is($r->{responses}[0]{body}, "mtls\n", 'tls with ca: answered');
	like(($mb->requests)[-1]{tls_client}, qr/CN\s*=\s*alice/,
		'tls with ca: the client certificate subject is logged');
	ok((grep { length $_->{error} } $mb->handshakes) >= 1,
		'tls with ca: the failed handshake is logged');

	my $bb = PortierBackend->new(name => 'brk', dir => $t->dir,
		tls => { cert => $crt, key => $key }, tls_break => 'close');
	ok(!$tls_conn->($bb), 'tls_break: the handshake fails');
	$_->stop for $tb, $mb, $bb;
}

# ---- die ------------------------------------------------------------------------------------------------
{
	my $s = conn($b2);
	write_all($s, req('GET', '/die'));
	is(PortierTest::next_event($s, 5), 'eof', '/die: no answer');
	ok($b2->wait_dead(5), '/die: the backend process exits');
	ok(!PortierTest::can_connect($b2->port), '/die: the port refuses');
	is(($b2->requests)[-1]{path}, '/die', '/die: logged first');
	my ($r) = one($b1, req('GET', '/'));
	is($r->{body}, "b1\n", 'the other backend still answers');
}

done_testing();
