#!/usr/bin/perl
# Request bodies nobody reads (portier.conf(5) HTTP HANDLING): a body is
# read and discarded so the connection can serve the next request; one
# over client_max_body_size gets 413 and a close that does not lose the
# 413 to a reset; "Expect: 100-continue" gets the final response at once,
# no 100, and a close; malformed chunked bodies close the connection.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use PortierTest;
use PortierHTTP;
use Test::More;
use Time::HiRes qw(time sleep);

PortierTest::need_modules(qw(rewrite static));

my $t = PortierTest->new;
$t->write_file('www/files/a.txt', 'static');
$t->config(<<'EOF')->run;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "localhost";
    locations = (
      { path = "/"; return = "200 $uri"; },
      { path = "/small/"; client_max_body_size = "1k"; return = "200 small"; },
      { path = "/files/"; root = "%%DIR%%/www"; }
    );
  }
);
EOF

my $next = "GET /next HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

sub post {
	my ($path, @h) = @_;
	return "POST $path HTTP/1.1\r\nHost: localhost\r\n"
		. join('', map { "$_\r\n" } @h) . "\r\n";
}

sub chunked {
	my ($data, $size) = @_;
	my $out = '';
	for (my $p = 0; $p < length $data; $p += $size) {
		my $c = substr($data, $p, $size);
		$out .= sprintf("%x\r\n%s\r\n", length $c, $c);
	}
	return $out . "0\r\n\r\n";
}

sub statuses {
	my ($r) = @_;
	return join(',', map { "$_->{status} $_->{body}" }
		@{ $r->{responses} });
}

# ---- 413 ----------------------------------------------------------------------
{
	# The 413 must come while the client is still sending, and survive the
	# 2 MB that follow it: the server drains them (lingering close) rather
	# than answering them with a reset.
	my $len = 2 << 20;
	my $s = connect_raw($t);
	write_all($s, post('/small/', "Content-Length: $len")
		. ('x' x 65536));
	ok(IO::Select->new($s)->can_read(5),
		'413: the response comes before the body is sent');
	ok(write_all($s, 'x' x ($len - 65536)),
		'413: the rest of the body is accepted, no reset');
	my $r = read_responses($s, 1, until_eof => 1, timeout => 10);
	my $res = $r->{responses}[0] // {};
	is($res->{status}, 413, '413 for Content-Length over the limit');
	is(lc($res->{headers}{connection} // ''), 'close', '413 says close');
	ok($r->{eof} && !$r->{reset}, '413: then a clean close');
}
{
	my $s = connect_raw($t);
	write_all($s, post('/small/', 'Transfer-Encoding: chunked')
		. chunked('y' x 2048, 256) . $next);
	my $r = read_responses($s, 2, until_eof => 1);
	is(join(',', map { $_->{status} } @{ $r->{responses} }), '413',
		'413 for a chunked body that grows over the limit, nothing more');
	ok($r->{eof}, 'chunked 413: closed');
}
{
	# the body grows over the limit after the response went out
	my $s = connect_raw($t);
	write_all($s, post('/small/', 'Transfer-Encoding: chunked'));
	my $r = read_responses($s, 1);
	is(statuses($r), '200 small', 'chunked, body late: answered at once');
	write_all($s, chunked('y' x 2048, 256) . $next);
	$r = read_responses($s, 1, until_eof => 1);
	is(scalar @{ $r->{responses} }, 0, 'chunked, body late, over the '
		. 'limit: the next request is not served');
	ok($r->{eof}, 'chunked, body late, over the limit: closed');
}
{
	my $s = connect_raw($t);
	write_all($s, post('/small/', 'Content-Length: 1024') . ('z' x 1024)
		. $next);
	my $r = read_responses($s, 2, until_eof => 1);
	is(statuses($r), '200 small,200 /next',
		'a body of exactly client_max_body_size is accepted');
}

# ---- discarding, then the next request ---------------------------------------------
for my $case (
	[ 'Content-Length, 100 KB', post('/d', 'Content-Length: 102400')
		. ('b' x 102400) ],
	[ 'chunked, 100 KB in 1 KB chunks', post('/d',
		'Transfer-Encoding: chunked') . chunked('c' x 102400, 1024) ],
	[ 'chunked with extensions and trailers', post('/d',
		'Transfer-Encoding: chunked') . "5;a=b;c=\"q r\"\r\nhello\r\n"
		. "6 ; x\r\n world\r\n0;last\r\nTrailer-A: x\r\nTrailer-B: y\r\n"
		. "\r\n" ],
	[ 'empty chunked body', post('/d', 'Transfer-Encoding: chunked')
		. "0\r\n\r\n" ],
	[ 'GET with a body to a static file', "GET /files/a.txt HTTP/1.1\r\n"
		. "Host: localhost\r\nContent-Length: 5\r\n\r\nhello" ],
)
{
	my ($name, $req) = @$case;
	my $s = connect_raw($t);
	write_all($s, $req . $next);
	my $r = read_responses($s, 2, until_eof => 1);
	my @st = map { $_->{status} } @{ $r->{responses} };
	is("@st", '200 200', "$name: discarded, the next request served");
	is($r->{responses}[1]{body}, '/next', "$name: the right next response");
}
{
	# a 405 keeps the connection: the body is discarded after it
	my $s = connect_raw($t);
	write_all($s, "POST /files/a.txt HTTP/1.1\r\nHost: localhost\r\n"
		. "Content-Length: 4000\r\n\r\n" . ('p' x 4000) . $next);
	my $r = read_responses($s, 2, until_eof => 1);
	is(join(',', map { $_->{status} } @{ $r->{responses} }), '405,200',
		'405 to a POST: the body is discarded after the response');
}

# ---- malformed chunked bodies --------------------------------------------------------
{
	my $s = connect_raw($t);
	write_all($s, post('/d', 'Transfer-Encoding: chunked')
		. "5\r\nhello\r\nxyz\r\n0\r\n\r\n" . $next);
	my $r = read_responses($s, 2, until_eof => 1);
	is(join(',', map { $_->{status} } @{ $r->{responses} }), '400',
		'invalid chunk size: 400 and nothing more');
	ok($r->{eof}, 'invalid chunk size: closed');
}
{
	my $s = connect_raw($t);
	write_all($s, post('/d', 'Transfer-Encoding: chunked'));
	my $r = read_responses($s, 1);
	is(statuses($r), '200 /d', 'chunked, body late: answered');
	write_all($s, "5\r\nhello\r\n-1\r\n" . $next);
	$r = read_responses($s, 1, until_eof => 1);
	is(scalar @{ $r->{responses} }, 0, 'invalid chunk size after the '
		. 'response: the next request is not served');
	ok($r->{eof}, 'invalid chunk size after the response: closed');
}

# ---- Expect: 100-continue --------------------------------------------------------------
{
	my $s = connect_raw($t);
	write_all($s, post('/e', 'Content-Length: 10', 'Expect: 100-continue'));
	my $r = read_responses($s, 1, until_eof => 1, timeout => 10);
	my $res = $r->{responses}[0] // { raw => '' };
	like($res->{raw}, qr{^HTTP/1\.1 200 }, '100-continue, body not '
		. 'needed: the final response at once, no 100');
	is(lc($res->{headers}{connection} // ''), 'close',
		'100-continue: the response says close');
	ok($r->{eof}, '100-continue: closed without waiting for the body');
	cmp_ok($r->{elapsed}, '<', 3, '100-continue: at once');
}
{
	my $s = connect_raw($t);
	write_all($s, post('/small/', 'Content-Length: 4096',
		'Expect: 100-continue'));
	my $r = read_responses($s, 1, until_eof => 1);
	like($r->{responses}[0]{raw} // '', qr{^HTTP/1\.1 413 },
		'100-continue over the limit: 413, no 100');
	ok($r->{eof}, '100-continue over the limit: closed');
}
{
	# a client that did not wait: the body follows the head at once
	my $s = connect_raw($t);
	write_all($s, post('/e', 'Content-Length: 10', 'Expect: 100-continue')
		. '0123456789' . $next);
	my $r = read_responses($s, 2, until_eof => 1);
	is(statuses($r), '200 /e', '100-continue with the body sent anyway: '
		. 'one response');
	ok($r->{eof}, '100-continue with the body sent anyway: closed');
}
{
	# no body at all: nothing to wait for, keep-alive stays
	my $s = connect_raw($t);
	write_all($s, post('/e', 'Content-Length: 0', 'Expect: 100-continue')
		. $next);
	my $r = read_responses($s, 2, until_eof => 1);
	is(statuses($r), '200 /e,200 /next', '100-continue with an empty body:'
		. ' kept alive');
}

# ---- slow bodies ----------------------------------------------------------------------
{
	my $body = join('', map { chr(65 + $_ % 26) } 0 .. 999);
	my $s = connect_raw($t);
	write_all($s, post('/slow', 'Content-Length: 1000'));
	send_paced($s, $body . $next, 10, 0.005);
	my $r = read_responses($s, 2, until_eof => 1, timeout => 10);
	is(statuses($r), '200 /slow,200 /next', 'Content-Length body in '
		. '10-byte pieces: discarded, the next request served');

	srand(7230);
	my $wire = post('/slowc', 'Transfer-Encoding: chunked')
		. chunked($body, 37) . $next;
	my ($p, @cuts) = (0);
	push @cuts, $p while ($p += 1 + int(rand(9))) < length $wire;
	$s = connect_raw($t);
	send_paced($s, $wire, \@cuts, 0.002);
	$r = read_responses($s, 2, until_eof => 1, timeout => 10);
	is(statuses($r), '200 /slowc,200 /next', 'chunked body cut at random '
		. '(inside sizes and CRLFs): discarded, next served');
}

# ---- clients that flood a lingering close ------------------------------------------
{
	# Two clients declare a huge body and send it as fast as they can
	# after their 413. Reading it to drop it must not hold the worker:
	# other clients are still served at once.
	my @kids;
	for (1 .. 2) {
		my $pid = fork // die "fork: $!";
		if ($pid == 0) {
			my $s = connect_raw($t);
			write_all($s, post('/small/',
				'Content-Length: 100000000000'));
			my $chunk = 'f' x (1 << 20);
			1 while write_all($s, $chunk);
			exit 0;
		}
		push @kids, $pid;
	}
	ok(PortierTest::wait_for(sub {
		my $log = $t->read_file('error.log') // '';
		my @n = $log =~ /too large body: 100000000000/g;
		return @n >= 2;
	}, 10), 'flood: both floods are being drained');
	my $worst = 0;
	for (1 .. 10) {
		my $start = time();
		my $r = $t->get('/during', timeout => 10);
		my $took = time() - $start;
		$worst = $took if $took > $worst;
		$worst = 99 unless ($r->{status} // 0) == 200;
	}
	kill 'TERM', @kids;
	waitpid($_, 0) for @kids;
	cmp_ok($worst, '<', 1, 'flood: other clients are served at once');
}

# ---- a client that leaves mid-body ----------------------------------------------------
{
	my $s = connect_raw($t);
	write_all($s, post('/gone', 'Content-Length: 1000') . ('g' x 10));
	my $r = read_responses($s, 1);
	is(statuses($r), '200 /gone', 'mid-body: answered');
	close $s;
	ok(wait_log($t, qr/client closed before the end of the body/),
		'mid-body close: noticed and logged');
	is($t->get('/alive')->{status}, 200, 'mid-body close: still serving');
}

done_testing;
