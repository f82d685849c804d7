#!/usr/bin/perl
# Broken TLS handshakes (issue 4): a plain HTTP request on a TLS port
# gets a 400 "The plain HTTP request was sent to HTTPS port" and the
# connection is closed; truncated ClientHellos (closed, or held open
# until client_header_timeout), garbage after the 0x16 of a handshake
# record, a random MiB, a ClientHello sent a byte at a time (the timeout
# bounds the whole handshake, not each read), a client that goes away
# mid-handshake (close, reset), a client that never answers the server's
# flight. After each: the connection is closed within a bound, the
# failure is logged at info with the client address, the same worker
# still serves a normal TLS request. And 200 half-finished handshakes
# held at once do not stall a normal client.
#
# Every wait is a bounded poll; the only pauses are the pace of a
# deliberately slow client.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use Socket qw(SOL_SOCKET SO_LINGER);
use Time::HiRes qw(time);
use PortierTest;
use PortierHTTP;
use PortierTLS;
use PortierTLSClient;
use Test::More;

PortierTest::need_modules(qw(rewrite));

my $t = PortierTest->new;
my $pki = PortierTLS->new($t->dir . '/pki');
my ($crt, $key) = $pki->server('ec', 'a.test');

$t->config(<<"EOF")->run;
client_header_timeout = "1s";
tls = { certificates = ( { cert = "$crt"; key = "$key"; } ); };
access_log = { path = "%%DIR%%/access.log"; format = "\$server_port|\$status|\$request"; };
servers = (
  { listen = "127.0.0.1:%%PORT_0%% ssl"; server_name = "a.test";
    return = "200 ok"; },
  { listen = "127.0.0.1:%%PORT_1%% ssl"; server_name = "a.test";
    client_header_timeout = "30s";
    return = "200 patient"; }
);
EOF
my @workers = $t->worker_pids;
my $hello = client_hello(sni => 'a.test');
my $P0 = $t->port(0);

my $FAILED = qr/\[info\].*TLS handshake failed.*client: 127\.0\.0\.1/;
my $TIMEOUT = qr/\[info\].*(?:TLS handshake|handshake).*(?:failed|timed out).*client: 127\.0\.0\.1/i;

sub count_log {
	my ($re) = @_;
	my $log = $t->read_file('error.log') // '';
	my $n = () = $log =~ /$re/g;
	return $n;
}

# After a broken handshake: the error log got one more line matching re,
# the worker is the same, and a normal TLS request is served.
sub still_serves {
	my ($what, $re, $before) = @_;
	ok(PortierTest::wait_for(sub { count_log($re) > $before }, 5),
		"$what: logged at info with the client address");
	my $r = tls_get($P0, '/', sni => 'a.test', timeout => 5);
	is($r->{status} . ' ' . $r->{body}, '200 ok',
		"$what: the worker still serves TLS");
	is_deeply([ $t->worker_pids ], \@workers, "$what: same worker");
}

# Write bytes without ever blocking longer than timeout seconds; the
# number written (less when the server closed or stopped reading).
sub send_bounded {
	my ($s, $bytes, $timeout) = @_;
	$s->blocking(0);
	my $sel = IO::Select->new($s);
	my $end = time() + ($timeout // 5);
	my $off = 0;
	while ($off < length $bytes) {
		my $left = $end - time();
		last if $left <= 0 || !$sel->can_write($left);
		my $n = syswrite($s, $bytes, length($bytes) - $off, $off);
		if (!defined $n) {
			next if $!{EAGAIN} || $!{EINTR};
			last;
		}
		$off += $n;
	}
	$s->blocking(1);
	return $off;
}

sub random_bytes {
	my ($n) = @_;
	return join '', map { pack 'N', int rand 4294967296 } 1 .. $n / 4;
}

# ---- plain HTTP on the TLS port ---------------------------------------------------

{
	my $before = count_log(qr/\[info\].*client: 127\.0\.0\.1/);
	my $s = connect_raw($t);
	write_all($s, "GET /plain HTTP/1.1\r\nHost: a.test\r\n\r\n");
	my $r = read_responses($s, 1, until_eof => 1, timeout => 5);
	my $resp = $r->{responses}[0] // { status => 0, body => '' };
	is($resp->{status}, 400, 'plain HTTP on a TLS port: 400');
	like($resp->{body}, qr/The plain HTTP request was sent to HTTPS port/,
		'plain HTTP on a TLS port: the message');
	ok($r->{eof}, 'plain HTTP on a TLS port: closed (keep-alive asked)');
	close $s;
	ok(PortierTest::wait_for(sub {
		($t->read_file('access.log') // '') =~ m{^$P0\|400\|GET /plain HTTP/1\.1$}m }),
		'plain HTTP on a TLS port: 400 in the access log');
	ok(PortierTest::wait_for(sub {
		count_log(qr/\[info\].*client: 127\.0\.0\.1/) > $before }),
		'plain HTTP on a TLS port: logged at info');

	# a HEAD, an HTTP/1.0 request
	$s = connect_raw($t);
	write_all($s, "GET / HTTP/1.0\r\n\r\n");
	$r = read_responses($s, 1, until_eof => 1, timeout => 5);
	is(($r->{responses}[0] // {})->{status}, 400, 'plain HTTP/1.0: 400');
	ok($r->{eof}, 'plain HTTP/1.0: closed');
	close $s;
	my $x = tls_get($P0, '/', sni => 'a.test');
	is($x->{status}, 200, 'plain HTTP: the worker still serves TLS');
}

# ---- a ClientHello or a plain request in small pieces ------------------------------------

# (the first byte alone must not decide too early, nor stall)
for my $cuts ([1], [5], [1, 5, 40]) {
	my $s = connect_raw($t);
	send_paced($s, $hello, $cuts, 0.05);
	my $sel = IO::Select->new($s);
	my $got = '';
	sysread($s, $got, 65536) if $sel->can_read(5);
	is(substr($got, 0, 1), "\x16",
		"ClientHello cut at @$cuts: the server's handshake flight comes");
	close $s;
}
{
	my $s = connect_raw($t);
	send_paced($s, "GET /slowplain HTTP/1.1\r\nHost: a.test\r\n\r\n",
		[1, 2, 10], 0.05);
	my $r = read_responses($s, 1, until_eof => 1, timeout => 5);
	my $resp = $r->{responses}[0] // { status => 0, body => '' };
	is($resp->{status}, 400, 'plain HTTP in pieces (first byte alone): 400');
	like($resp->{body}, qr/plain HTTP request was sent to HTTPS port/,
		'plain HTTP in pieces: the message');
	close $s;

	$s = connect_raw($t);
	write_all($s, "POST /body HTTP/1.1\r\nHost: a.test\r\nContent-Length: 5\r\n"
		. "\r\nhello");
	$r = read_responses($s, 1, until_eof => 1, timeout => 5);
	is(($r->{responses}[0] // {})->{status}, 400, 'plain POST with a body: 400');
	ok($r->{eof}, 'plain POST with a body: closed');
	close $s;
}

# ---- truncated ClientHellos ------------------------------------------------------------

for my $n (10, 50) {
	my $before = count_log($FAILED);
	my $s = connect_raw($t);
	write_all($s, substr($hello, 0, $n));
	close $s;
	still_serves("first $n bytes of a ClientHello, then close", $FAILED, $before);
}
for my $n (10, 50, length $hello) {
	my $what = $n == length $hello ? 'a whole ClientHello, then silence'
		: "first $n bytes of a ClientHello, held open";
	my $before = count_log($TIMEOUT);
	my $s = connect_raw($t);
	write_all($s, substr($hello, 0, $n));
	my $e = wait_eof($s, 6);
	ok($e->{eof}, "$what: closed by the server");
	ok($e->{elapsed} > 0.5 && $e->{elapsed} < 4,
		sprintf("$what: after client_header_timeout (1s; %.2fs)", $e->{elapsed}));
	close $s;
	still_serves($what, $TIMEOUT, $before);
}

# ---- garbage -------------------------------------------------------------------------------

for my $case (
	[ 'garbage after 0x16', "\x16" . 'this is not a TLS record at all' x 4 ],
	[ 'a handshake record header, then garbage',
	  "\x16\x03\x01\x00\x80" . random_bytes(128) ],
	[ 'a ClientHello with its body scrambled',
	  substr($hello, 0, 5) . random_bytes(length($hello) - 5) ],
	[ 'a record longer than TLS allows', "\x16\x03\x01\xff\xff" . random_bytes(1024) ],
) {
	my ($what, $bytes) = @$case;
	my $before = count_log($FAILED);
	my $s = connect_raw($t);
	send_bounded($s, $bytes, 5);
	my $e = wait_eof($s, 5);
	ok($e->{eof}, "$what: closed by the server");
	ok($e->{elapsed} < 0.9, sprintf("$what: at once, not at the timeout (%.2fs)",
		$e->{elapsed}));
	close $s;
	still_serves($what, $FAILED, $before);
}
{
	my $before = count_log($FAILED);
	my $s = connect_raw($t);
	my $sent = send_bounded($s, "\x16" . random_bytes(1 << 20), 5);
	my $e = wait_eof($s, 5);
	ok($e->{eof}, "0x16 and a random MiB: closed (sent $sent bytes)");
	close $s;
	still_serves('0x16 and a random MiB', $FAILED, $before);

	# not even a handshake byte first: taken as a (bad) plain request
	$s = connect_raw($t);
	$sent = send_bounded($s, "X" . random_bytes(1 << 20), 5);
	$e = wait_eof($s, 5);
	ok($e->{eof}, "a random MiB: closed (sent $sent bytes)");
	close $s;
	my $r = tls_get($P0, '/', sni => 'a.test');
	is($r->{status}, 200, 'a random MiB: the worker still serves TLS');
}

# ---- a slow ClientHello (slowloris) -------------------------------------------------------

{
	my $before = count_log($TIMEOUT);
	my $s = connect_raw($t);
	my $sel = IO::Select->new($s);
	my $start = time();
	my ($closed, $i) = (0, 0);
	while (time() - $start < 6 && $i < length $hello) {
		last unless write_all($s, substr($hello, $i++, 1));
		if ($sel->can_read(0.1)) {
			my $n = sysread($s, my $buf, 4096);
			if (!$n) {
				$closed = 1;
				last;
			}
		}
	}
	my $elapsed = time() - $start;
	unless ($closed) {
		my $e = wait_eof($s, 0.5);
		$closed = $e->{eof};
	}
	ok($closed, sprintf('ClientHello at a byte per 0.1s: closed by the server '
		. '(%d of %d bytes sent, %.2fs)', $i, length $hello, $elapsed));
	ok($elapsed < 4, 'ClientHello at a byte per 0.1s: the timeout bounds the '
		. 'whole handshake');
	close $s;
	still_serves('slow ClientHello', $TIMEOUT, $before);
}

# ---- a client that goes away mid-handshake -------------------------------------------------

for my $how ('close', 'reset') {
	my $before = count_log($FAILED);
	my $s = connect_raw($t);
	write_all($s, $hello);
	# the server's first flight (ServerHello...)
	my $sel = IO::Select->new($s);
	my $got = '';
	if ($sel->can_read(5)) {
		sysread($s, $got, 65536);
	}
	is(substr($got, 0, 1), "\x16", "mid-handshake $how: the server answered");
	setsockopt($s, SOL_SOCKET, SO_LINGER, pack('II', 1, 0)) if $how eq 'reset';
	close $s;
	still_serves("a client that ${how}s mid-handshake", $FAILED, $before);
}

# ---- 200 half-finished handshakes at once ----------------------------------------------------

{
	my $P1 = $t->port(1);
	my @held;
	for my $i (1 .. 200) {
		my $s = connect_raw($t, port => $P1);
		write_all($s, substr($hello, 0, $i % 2 ? 50 : length $hello));
		push @held, $s;
	}
	my $start = time();
	my $r = tls_get($P1, '/', sni => 'a.test', timeout => 5);
	my $elapsed = time() - $start;
	is($r->{status} . ' ' . $r->{body}, '200 patient',
		'200 half-finished handshakes held: a normal client is served');
	ok($elapsed < 2, sprintf('... promptly (%.2fs)', $elapsed));
	$r = tls_get($P0, '/', sni => 'a.test', timeout => 5);
	is($r->{status}, 200, '... and on the other port too');
	my $open = grep { PortierTest::next_event($_, 0) ne 'eof' } @held;
	is($open, 200, '... while the 200 are still held open');
	close $_ for @held;
	is_deeply([ $t->worker_pids ], \@workers, '200 half-finished: same worker');
	$r = tls_get($P1, '/', sni => 'a.test', timeout => 5);
	is($r->{status}, 200, 'after they all closed: still serving');
}

ok(!$t->log_has(qr/\[(alert|emerg|crit)\]/), 'no alert in the error log');

done_testing;
