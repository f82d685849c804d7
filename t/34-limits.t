#!/usr/bin/perl
# Size and count limits of a request head (portier.conf(5)):
# large_header_buffer bounds the request line (414 beyond it) and each
# header line (431); the whole head may be four times as large (431
# beyond); more than max_headers header lines is 431. Each limit is tested
# at its value (accepted) and one past it (refused), with a small
# large_header_buffer (port 0) and with the defaults (port 1), whose heads
# need a header buffer grown past its first block.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierHTTP;
use Test::More;

PortierTest::need_modules(qw(rewrite));

my $t = PortierTest->new;
$t->config(<<'EOF')->run;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "localhost";
    large_header_buffer = "1k";
    max_headers = 10;
    locations = ( { path = "/"; return = "200 ok"; } );
  },
  {
    listen = "127.0.0.1:%%PORT_1%%";
    server_name = "localhost";
    locations = ( { path = "/"; return = "200 ok"; } );
  }
);
EOF

my $next = "GET /next HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";

# A request line of exactly $len bytes, CRLF not counted.
sub line_of {
	my ($len) = @_;
	my $fixed = length("GET / HTTP/1.1");
	return 'GET /' . ('a' x ($len - $fixed)) . ' HTTP/1.1';
}

# A whole head of exactly $len bytes (final empty line included), with
# $nf filler fields of at most $max bytes each.
sub head_of {
	my ($len, $nf, $max) = @_;
	my $h = "GET / HTTP/1.1\r\nHost: localhost\r\n";
	my $left = $len - length($h) - 2;
	for my $i (1 .. $nf) {
		my $want = int($left / ($nf - $i + 1));
		my $name = sprintf('X-F%02d: ', $i);
		die "head_of: line too long" if $want - 2 > $max;
		$h .= $name . ('v' x ($want - 2 - length $name)) . "\r\n";
		$left -= $want;
	}
	$h .= "\r\n";
	die 'head_of: ' . length($h) . " != $len" unless length($h) == $len;
	return $h;
}

# One exchange: the bytes, then a pipelined request unless refused.
sub check {
	my ($port, $name, $bytes, $status, %opt) = @_;
	my $s = connect_raw($t, port => $t->port($port));
	if ($opt{paced}) {
		send_paced($s, $bytes . $next, 100, 0.002);
	} else {
		write_all($s, $bytes . $next);
	}
	my $r = read_responses($s, 3, until_eof => 1, timeout => 10);
	my @st = map { $_->{status} } @{ $r->{responses} };
	my $want = $status =~ / / ? $status
		: $status == 200 ? '200 200' : $status;
	is("@st", $want, "$name: " . ($status =~ / / ? "answers $status"
		: $status == 200 ? 'accepted, next served'
		: "$status, closed"));
	ok($r->{eof}, "$name: closed at the end");
}

my $host = "Host: localhost\r\n";
for my $c ([ 0, 1024, 10 ], [ 1, 8192, 100 ]) {
	my ($port, $lim, $maxh) = @$c;
	my $tag = $port ? 'defaults' : '1k';
	check($port, "$tag: request line of $lim",
		line_of($lim) . "\r\n$host\r\n", 200);
	check($port, "$tag: request line of " . ($lim + 1),
		line_of($lim + 1) . "\r\n$host\r\n", 414);
	check($port, "$tag: request line of " . ($lim + 1) . ', slowly',
		line_of($lim + 1) . "\r\n$host\r\n", 414, paced => 1)
		unless $port;
	my $field = 'X-Long: ';
	check($port, "$tag: header line of $lim", "GET / HTTP/1.1\r\n$host"
		. $field . ('h' x ($lim - length $field)) . "\r\n\r\n", 200);
	check($port, "$tag: header line of " . ($lim + 1),
		"GET / HTTP/1.1\r\n$host" . $field
		. ('h' x ($lim + 1 - length $field)) . "\r\n\r\n", 431);
	check($port, "$tag: head of " . (4 * $lim),
		head_of(4 * $lim, $maxh - 1, $lim), 200);
	check($port, "$tag: head of " . (4 * $lim + 1),
		head_of(4 * $lim + 1, $maxh - 1, $lim), 431);
	check($port, "$tag: $maxh header lines", "GET / HTTP/1.1\r\n$host"
		. join('', map { "X-$_: v\r\n" } 2 .. $maxh) . "\r\n", 200);
	check($port, "$tag: " . ($maxh + 1) . ' header lines',
		"GET / HTTP/1.1\r\n$host"
		. join('', map { "X-$_: v\r\n" } 2 .. $maxh + 1) . "\r\n", 431);
	check($port, "$tag: empty lines before the request line count",
		("\r\n" x 2) . head_of(4 * $lim - 3, $maxh - 1, $lim), 431);
	# the limit counts from the start of each request, not of the buffer
	check($port, "$tag: head of " . (4 * $lim) . ' behind another request',
		"GET /first HTTP/1.1\r\n$host\r\n"
		. head_of(4 * $lim, $maxh - 1, $lim), '200 200 200');
	check($port, "$tag: head of " . (4 * $lim + 1)
		. ' behind another request', "GET /first HTTP/1.1\r\n$host\r\n"
		. head_of(4 * $lim + 1, $maxh - 1, $lim), '200 431');
}

done_testing;
