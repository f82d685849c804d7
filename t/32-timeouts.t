#!/usr/bin/perl
# Timeouts of a client connection (portier.conf(5)): client_header_timeout
# (408 for a partial head, a silent close for an empty connection, counted
# from the connection or from the first byte of a following request, never
# reset by a trickle), client_body_timeout while an unwanted body is
# discarded (a pause, not the whole body), send_timeout for a client that
# stops reading.
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
my $big = 64 << 20;
{
	# sparse: sendfile(2) reads zeros, the disk holds nothing
	my $path = $t->write_file('www/big/f', '');
	truncate($path, $big) or die "truncate: $!";
}
$t->config(<<'EOF')->run;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "localhost";
    client_header_timeout = "1s";
    locations = (
      { path = "/"; return = "200 $uri"; },
      { path = "/slowbody/"; client_body_timeout = "1s"; return = "200 body"; },
      { path = "/big/"; root = "%%DIR%%/www"; send_timeout = "1s"; }
    );
  }
);
EOF

my $head = "GET /x HTTP/1.1\r\nHost: localhost\r\n\r\n";

# ---- client_header_timeout ----------------------------------------------------
{
	my $s = connect_raw($t);
	write_all($s, "GET /x HTTP/1.1\r\nHost: loc");
	my $r = read_responses($s, 1, until_eof => 1, timeout => 10);
	my $res = $r->{responses}[0] // {};
	is($res->{status}, 408, 'partial head, then silence: 408');
	is(lc($res->{headers}{connection} // ''), 'close', '408 says close');
	ok($r->{eof}, '408: then the server closes');
	cmp_ok($r->{elapsed}, '>=', 0.8, '408: not before the timeout');
	cmp_ok($r->{elapsed}, '<', 5, '408: soon after the timeout');
}
{
	my $s = connect_raw($t);
	my $w = wait_eof($s, 10);
	ok($w->{eof} && $w->{bytes} == 0,
		'a connection that sends nothing is closed without a response');
	cmp_ok($w->{elapsed}, '>=', 0.8, '... after the timeout');
}
{
	# the whole head within the timeout, one byte at a time
	my $s = connect_raw($t);
	send_paced($s, $head, 1, 0.005);
	my $r = read_responses($s, 1);
	is($r->{responses}[0]{status}, 200, 'a head trickled byte by byte '
		. 'within the timeout is served');
}
{
	# a head that never ends: the trickle must not reset the timer
	my $s = connect_raw($t);
	my $sel = IO::Select->new($s);
	my $start = time();
	my $buf = '';
	my $line = "GET /x HTTP/1.1\r\nHost: localhost\r\nX-Slow: ";
	my $i = 0;
	while (time() - $start < 8) {
		my $byte = $i < length $line ? substr($line, $i, 1) : 'a';
		$i++;
		last unless defined syswrite($s, $byte);
		next unless $sel->can_read(0.05);
		my $n = sysread($s, $buf, 4096, length $buf);
		last unless $n;
		last if PortierTest::response_length($buf);
	}
	my $elapsed = time() - $start;
	my $res = PortierTest::parse_response($buf) // {};
	is($res->{status}, 408, 'an endless trickle gets 408');
	cmp_ok($elapsed, '<', 4, 'the timeout counts from the connection, '
		. 'not from the last byte');
	ok(wait_eof($s, 10)->{eof}, 'the trickling client is disconnected');
}
{
	# keep-alive: the header timer does not run while idle...
	my $s = connect_raw($t);
	write_all($s, $head);
	my $r = read_responses($s, 1);
	is($r->{responses}[0]{status}, 200, 'keep-alive: first request');
	ok(!IO::Select->new($s)->can_read(1.5),
		'idle keep-alive: no 408 and no close after '
		. 'client_header_timeout');
	# ...and starts with the first byte of the next request
	write_all($s, "GET /2 HTTP/1.1\r\n");
	$r = read_responses($s, 1, until_eof => 1, timeout => 10);
	is($r->{responses}[0]{status}, 408,
		'keep-alive: a partial second head gets 408');
	ok($r->{eof}, 'keep-alive: then the server closes');
	cmp_ok($r->{elapsed}, '>=', 0.8, 'keep-alive: 408 counted from the '
		. 'first byte of the second request');
	cmp_ok($r->{elapsed}, '<', 5, 'keep-alive: 408 soon after');
}

{
	# An extra CRLF after a request (RFC 9112 2.2: ignored before a
	# request line) does not start a head: still idle, no 408.
	for my $late (0, 1, 2) {
		my $how = ('after the request', 'sent later',
			'split between CR and LF')[$late];
		my $s = connect_raw($t);
		write_all($s, $head . ($late ? '' : "\r\n"));
		my $r = read_responses($s, 1);
		is($r->{responses}[0]{status}, 200, "extra CRLF $how: served");
		write_all($s, "\r\n\r\n") if $late == 1;
		send_paced($s, "\r\n", 1, 0.05) if $late == 2;
		ok(!IO::Select->new($s)->can_read(1.5),
			"extra CRLF $how: no 408 after client_header_timeout");
		write_all($s, $head);
		$r = read_responses($s, 1);
		is($r->{responses}[0]{status}, 200,
			"extra CRLF $how: the next request is served");
	}
}

# ---- client_body_timeout --------------------------------------------------------
{
	my $s = connect_raw($t);
	write_all($s, "POST /slowbody/ HTTP/1.1\r\nHost: localhost\r\n"
		. "Content-Length: 100\r\n\r\n0123456789");
	my $r = read_responses($s, 1);
	is($r->{responses}[0]{status}, 200, 'stalled body: answered at once');
	my $w = wait_eof($s, 10);
	ok($w->{eof}, 'stalled body: closed after client_body_timeout');
	cmp_ok($w->{elapsed}, '>=', 0.8, 'stalled body: not before');
	cmp_ok($w->{elapsed}, '<', 5, 'stalled body: soon after');
	ok(wait_log($t, qr/client timed out sending the body/),
		'stalled body: logged');
}
{
	# 10 pieces 0.3 s apart: 2.7 s in all, no pause of 1 s
	my $s = connect_raw($t);
	my $body = 'ab' x 10;
	write_all($s, "POST /slowbody/ HTTP/1.1\r\nHost: localhost\r\n"
		. "Content-Length: 20\r\n\r\n");
	send_paced($s, $body . "GET /next HTTP/1.1\r\nHost: localhost\r\n"
		. "Connection: close\r\n\r\n", [ map { 2 * $_ } 1 .. 10 ], 0.3);
	my $r = read_responses($s, 2, until_eof => 1, timeout => 10);
	is(join(',', map { "$_->{status} $_->{body}" } @{ $r->{responses} }),
		'200 body,200 /next',
		'a slow body with short pauses is discarded, the next request '
		. 'served');
}

# ---- send_timeout -------------------------------------------------------------------
{
	my $s = connect_raw($t, rcvbuf => 4096);
	write_all($s, "GET /big/f HTTP/1.1\r\nHost: localhost\r\n\r\n");
	ok(wait_log($t, qr/client timed out reading the response/, 20),
		'a client that stops reading: send_timeout fires');
	my $w = wait_eof($s, 30);
	ok($w->{eof}, 'send_timeout: the connection is closed');
	cmp_ok($w->{bytes}, '<', $big, 'send_timeout: the response was cut');
}

my $r = $t->get('/alive');
is($r->{status}, 200, 'still serving');

done_testing;
