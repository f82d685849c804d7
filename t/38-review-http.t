#!/usr/bin/perl
# Defects found by a review of the HTTP data path, one block each, so that
# they stay fixed:
#
#  - a request body nobody wants is read and discarded; the head of the
#    request (its header fields, request line and query, which variables,
#    conditional requests and the access log read) must survive that;
#  - request data written to the error log (a decoded path, which may hold
#    CR and LF from "%0d%0a") must not forge log lines;
#  - a HEAD whose head fills the largest header buffer, or does not come
#    whole within client_header_timeout, gets its 431 or 408 without a
#    body, as every other answer to a HEAD;
#  - a declared body over client_max_body_size is answered with 413 also
#    by the answers given before a location is chosen (a server-level
#    return, "OPTIONS *"), rather than read to its end.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierHTTP;
use Test::More;

PortierTest::need_modules(qw(rewrite static));

my $t = PortierTest->new;
$t->write_file('www/files/a.txt', 'static file');
$t->config(<<'EOF')->run;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "localhost";
    access_log = { path = "%%DIR%%/access.log";
                   format = "$request|$http_x_id|$args"; };
    locations = (
      { path = "/echo"; return = "200 [$http_x_id][$args][$request]"; },
      { path = "/files/"; root = "%%DIR%%/www"; },
      { path = "/"; root = "%%DIR%%/www"; }
    );
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    large_header_buffer = "1k";
    client_max_body_size = "1k";
    client_header_timeout = "1s";
    return = "200 server return";
  }
);
EOF

sub access_lines {
	my ($n) = @_;
	PortierTest::wait_for(sub {
		(($t->read_file('access.log') // '') =~ tr/\n//) >= $n
	}, 10);
	return split /\n/, $t->read_file('access.log') // '';
}

# ---- the head survives a discarded body ------------------------------------
{
	# Head, body and the next request in one write: the first read fills
	# the header buffer, so the handler's discard reads the rest of the
	# body from the socket while the head is still in use.
	my $body = 'z' x 9000;
	my $s = connect_raw($t);
	write_all($s, "POST /echo?q=1 HTTP/1.1\r\nHost: localhost\r\n"
		. "X-Id: first\r\nContent-Length: 9000\r\n\r\n$body"
		. "GET /echo?q=2 HTTP/1.1\r\nHost: localhost\r\nX-Id: second\r\n"
		. "Connection: close\r\n\r\n");
	my $r = read_responses($s, 2, until_eof => 1);
	my @res = @{ $r->{responses} };
	is($res[0]{body}, '[first][q=1][POST /echo?q=1 HTTP/1.1]',
		'discarded body: the fields of the head are intact');
	is($res[1]{body}, '[second][q=2][GET /echo?q=2 HTTP/1.1]',
		'discarded body: the next request is served');
}
{
	# The body comes after the response: the discard runs after the
	# handler, and the log phase still reads the head.
	my $s = connect_raw($t);
	write_all($s, "POST /echo?q=3 HTTP/1.1\r\nHost: localhost\r\n"
		. "X-Id: late\r\nContent-Length: 6000\r\n\r\n");
	my $r = read_responses($s, 1);
	is($r->{responses}[0]{body}, '[late][q=3][POST /echo?q=3 HTTP/1.1]',
		'late body: answered before the body came');
	write_all($s, 'y' x 6000);
	write_all($s, "GET /echo HTTP/1.1\r\nHost: localhost\r\n"
		. "Connection: close\r\n\r\n");
	$r = read_responses($s, 1, until_eof => 1);
	is($r->{responses}[0]{status}, 200, 'late body: the next request');
	my @lines = access_lines(4);
	is($lines[2], 'POST /echo?q=3 HTTP/1.1|late|q=3',
		'late body: the access log has the request, not the body');
}
{
	# A conditional request with a body: the discard comes before the
	# validators are read.
	my $etag = $t->get('/files/a.txt')->{headers}{etag};
	my $s = connect_raw($t);
	write_all($s, "GET /files/a.txt HTTP/1.1\r\nHost: localhost\r\n"
		. "If-None-Match: $etag\r\nContent-Length: 9000\r\n"
		. "Connection: close\r\n\r\n" . ('w' x 9000));
	my $r = read_responses($s, 1, until_eof => 1);
	is($r->{responses}[0]{status}, 304,
		'discarded body: If-None-Match still gives 304');
}

# ---- the error log can not be forged ------------------------------------------
{
	my $r = $t->get('/x%0d%0aFORGED%20line');
	is($r->{status}, 404, 'a path with CR LF: 404');
	ok($t->wait_log(qr/open\(.*x\\x0d\\x0aFORGED line/),
		'the CR LF of the path is escaped in the error log');
	ok(!$t->log_has(qr/^FORGED/m), 'no forged line in the error log');
}

# ---- HEAD refused for a head that fills the buffer ------------------------------
{
	# large_header_buffer 1k: a head may have 4096 bytes, and the buffer
	# holds as many. 4096 bytes of whole lines without the empty line fill
	# it while the scanner still waits for the end of the head (with one
	# byte more waiting in the socket, or none).
	for my $len (4096, 4097) {
		my $req = "HEAD / HTTP/1.1\r\nHost: localhost\r\n";
		$req .= 'X-Pad: ' . ('a' x 900) . "\r\n" while length $req < $len - 1000;
		$req .= 'X-End: ' . ('b' x (4096 - length($req) - 9)) . "\r\n";
		$req .= 'x' if $len > 4096;
		is(length $req, $len, "HEAD head of $len bytes");
		my $s = connect_raw($t, port => $t->port(1));
		write_all($s, $req);
		my $r = read_responses($s, 1, until_eof => 1, head_only => [1]);
		is($r->{responses}[0]{status}, 431, "$len bytes: 431");
		is($r->{rest}, '', "$len bytes: no body after the 431 to a HEAD");
	}
}
{
	my $s = connect_raw($t, port => $t->port(1));
	write_all($s, "HEAD / HTTP/1.1\r\nHost: localhost\r\n");
	my $r = read_responses($s, 1, until_eof => 1, head_only => [1]);
	is($r->{responses}[0]{status}, 408, 'HEAD head cut short: 408');
	is($r->{rest}, '', 'HEAD head cut short: no body after the 408');
}

# ---- client_max_body_size before a location is chosen -----------------------------
for my $line ('POST /', 'OPTIONS *') {
	my $s = connect_raw($t, port => $t->port(1));
	write_all($s, "$line HTTP/1.1\r\nHost: localhost\r\n"
		. "Content-Length: 100000\r\n\r\n" . ('x' x 4096));
	my $r = read_responses($s, 1, until_eof => 1);
	my $res = $r->{responses}[0] // {};
	is($res->{status}, 413, "$line: a declared body over the limit: 413");
	is(lc($res->{headers}{connection} // ''), 'close', "$line: and close");
	ok($r->{eof} && !$r->{reset}, "$line: a clean close");
}
{
	my $s = connect_raw($t, port => $t->port(1));
	write_all($s, "POST / HTTP/1.1\r\nHost: localhost\r\n"
		. "Content-Length: 1024\r\n\r\n" . ('x' x 1024)
		. "GET / HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
	my $r = read_responses($s, 2, until_eof => 1);
	is(join(',', map { "$_->{status} $_->{body}" } @{ $r->{responses} }),
		'200 server return,200 server return',
		'a body at the limit is discarded, the next request served');
}

done_testing;
