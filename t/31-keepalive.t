#!/usr/bin/perl
# Persistent connections and pipelining (RFC 9112 section 9): HTTP/1.1
# default keep-alive, "Connection: close", HTTP/1.0 keep-alive, responses
# in order for pipelined requests however the bytes are split,
# keepalive_requests, keepalive_timeout, and responses without a body
# (HEAD, 204, 304) that must not desynchronise what follows.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use PortierTest;
use PortierHTTP;
use Test::More;
use IO::Select;
use POSIX ();
use Time::HiRes qw(time);

PortierTest::need_modules(qw(rewrite static));

my $t = PortierTest->new;
my $file = "0123456789abcdef" x 8;
$t->write_file('www/files/a.txt', $file);
my $large = join('', map { sprintf("%07d\n", $_) } 0 .. (4 << 20) / 8 - 1);
$t->write_file('www/files/large.txt', $large);
$t->write_file('www/nosf/large.txt', $large);
$t->config(<<'EOF')->run;
servers = (
  {
    listen = "127.0.0.1:%%PORT_0%%";
    server_name = "localhost";
    locations = (
      { path = "/"; return = "200 $uri"; },
      { path = "= /nc"; return = "204"; },
      { path = "/kr/"; keepalive_requests = 3; return = "200 $uri"; },
      { path = "/kt1/"; keepalive_timeout = "1s"; return = "200 $uri"; },
      { path = "/kt0/"; keepalive_timeout = 0; return = "200 $uri"; },
      { path = "/files/"; root = "%%DIR%%/www"; },
      { path = "/nosf/"; root = "%%DIR%%/www"; sendfile = false; }
    );
  }
);
EOF

sub req {
	my ($method, $path, @h) = @_;
	my $v = $path =~ s{ HTTP/1\.0$}{} ? '1.0' : '1.1';
	return "$method $path HTTP/$v\r\n"
		. ($v eq '1.1' ? "Host: localhost\r\n" : '')
		. join('', map { "$_\r\n" } @h) . "\r\n";
}

sub conn_hdr { lc($_[0]{headers}{connection} // '') }

# ---- HTTP/1.1: persistent by default ------------------------------------
{
	my $s = connect_raw($t);
	write_all($s, req('GET', '/one'));
	my $r = read_responses($s, 1);
	my $one = $r->{responses}[0];
	is($one->{body}, '/one', '1.1: first response');
	is(conn_hdr($one), '', '1.1: no Connection: close');
	ok(!$r->{eof}, '1.1: still open after the response');
	write_all($s, req('GET', '/two'));
	$r = read_responses($s, 1);
	is($r->{responses}[0]{body}, '/two', '1.1: second request, same '
		. 'connection');
	write_all($s, req('GET', '/three', 'Connection: close'));
	$r = read_responses($s, 1, until_eof => 1);
	is($r->{responses}[0]{body}, '/three', 'Connection: close: answered');
	is(conn_hdr($r->{responses}[0]), 'close',
		'Connection: close: the response says close');
	ok($r->{eof}, 'Connection: close: the server closes');
}

# ---- HTTP/1.0 -------------------------------------------------------------
{
	my $s = connect_raw($t);
	write_all($s, req('GET', '/a HTTP/1.0'));
	my $r = read_responses($s, 1, until_eof => 1);
	is($r->{responses}[0]{body}, '/a', '1.0: answered');
	is(conn_hdr($r->{responses}[0]), 'close', '1.0: says close');
	ok($r->{eof}, '1.0: closed after the response');

	$s = connect_raw($t);
	write_all($s, req('GET', '/b HTTP/1.0', 'Connection: keep-alive'));
	$r = read_responses($s, 1);
	is(conn_hdr($r->{responses}[0]), 'keep-alive',
		'1.0 keep-alive: the response says keep-alive');
	ok(!$r->{eof}, '1.0 keep-alive: still open');
	write_all($s, req('GET', '/c HTTP/1.0', 'Connection: Keep-Alive'));
	$r = read_responses($s, 1);
	is($r->{responses}[0]{body}, '/c', '1.0 keep-alive: second request');
	write_all($s, req('GET', '/d HTTP/1.0'));
	$r = read_responses($s, 1, until_eof => 1);
	is($r->{responses}[0]{body}, '/d', '1.0: third request answered');
	ok($r->{eof}, '1.0: closed when keep-alive is no longer asked');
}

# ---- a client that half-closes after its request ---------------------------
{
	# The worker is paused so that the request and the FIN reach it in
	# one readiness event: no later edge will announce the end of input.
	my ($worker) = $t->worker_pids;
	my $s = connect_raw($t);
	kill 'STOP', $worker;
	write_all($s, req('GET', '/half'));
	shutdown($s, 1);
	kill 'CONT', $worker;
	my $r = read_responses($s, 1, until_eof => 1, timeout => 5);
	is($r->{responses}[0]{body}, '/half', 'half-close: answered');
	ok($r->{eof}, 'half-close: the server closes at once, not after '
		. 'keepalive_timeout');
}

# ---- pipelining -------------------------------------------------------------
my $n = 20;
my $pipe = join('', map { req('GET', "/p$_") } 1 .. $n - 1)
	. req('GET', "/p$n", 'Connection: close');
{
	my $s = connect_raw($t);
	write_all($s, $pipe);
	my $r = read_responses($s, $n, until_eof => 1);
	is(join(',', map { $_->{body} } @{ $r->{responses} }),
		join(',', map { "/p$_" } 1 .. $n),
		"$n pipelined requests in one write: answered in order");
	ok($r->{eof} && $r->{rest} eq '', 'pipeline: closed after the last, '
		. 'nothing more');
}

# A pipeline mixing GET, HEAD, bodies (Content-Length and chunked), a 204,
# a 304 and a static file, to be cut in odd places.
my $etag = $t->get('/files/a.txt')->{headers}{etag};
ok($etag, 'the static file has an ETag');
my @mixed = (
	[ req('GET', '/m1'), 0, '/m1', 200 ],
	[ req('HEAD', '/m2'), 1, '', 200 ],
	[ req('POST', '/m3', 'Content-Length: 11') . 'hello world', 0, '/m3',
		200 ],
	[ req('HEAD', '/files/a.txt'), 1, '', 200 ],
	[ req('POST', '/m5', 'Transfer-Encoding: chunked')
		. "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n", 0,
		'/m5', 200 ],
	[ req('GET', '/nc'), 0, '', 204 ],
	[ req('GET', '/files/a.txt', "If-None-Match: $etag"), 0, '', 304 ],
	[ req('GET', '/files/a.txt'), 0, $file, 200 ],
	[ req('DELETE', '/m9', 'Content-Length: 3') . 'abc', 0, '/m9', 200 ],
	[ req('GET', '/m10', 'Connection: close'), 0, '/m10', 200 ],
);
my $mixed = join('', map { $_->[0] } @mixed);
my @head_only = map { $_->[1] } @mixed;
my $want = join(' ', map { "$_->[3]:$_->[2]" } @mixed);

sub check_mixed {
	my ($how, $s) = @_;
	my $r = read_responses($s, scalar @mixed, until_eof => 1,
		head_only => \@head_only, timeout => 10);
	my @got = @{ $r->{responses} };
	is(join(' ', map { "$_->{status}:$_->{body}" } @got), $want,
		"mixed pipeline $how: complete and in order");
	ok($r->{eof} && $r->{rest} eq '',
		"mixed pipeline $how: nothing after the last response");
	# a response without a body is followed at once by the next one
	my $heads_ok = 1;
	for my $i (0 .. $#got) {
		next unless $head_only[$i] || $got[$i]{status} =~ /^(204|304)$/;
		$heads_ok = 0 if $got[$i]{raw} !~ /\r\n\r\n\z/;
	}
	ok($heads_ok, "mixed pipeline $how: HEAD, 204 and 304 carry no body");
	my $len = $got[1]{headers}{'content-length'} // -1;
	is($len, 3, "mixed pipeline $how: HEAD keeps the Content-Length of GET");
}

{
	my $s = connect_raw($t);
	write_all($s, $mixed);
	check_mixed('in one write', $s);
}
{
	my $s = connect_raw($t);
	send_paced($s, $mixed, 1, 0.001);
	check_mixed('byte by byte', $s);
}
{
	# cut between every CR and its LF, and right after every LF
	my @cuts;
	while ($mixed =~ /\r|\n/g) {
		push @cuts, pos($mixed);
	}
	my $s = connect_raw($t);
	send_paced($s, $mixed, \@cuts, 0.002);
	check_mixed('cut at every CR and LF', $s);
}
{
	srand(9112);
	my ($p, @cuts) = (0);
	push @cuts, $p while ($p += 1 + int(rand(40))) < length $mixed;
	my $s = connect_raw($t);
	send_paced($s, $mixed, \@cuts, 0.002);
	check_mixed('cut at random', $s);
}

# ---- a response that fills the socket, then a pipelined request -------------
for my $path ('/files/large.txt', '/nosf/large.txt') {
	# the client reads slowly through a small buffer: the server's
	# writes block again and again, then the next request is served
	my $s = connect_raw($t, rcvbuf => 16384);
	write_all($s, req('GET', $path) . req('HEAD', $path)
		. req('GET', '/files/a.txt', 'Connection: close'));
	my ($buf, $eof) = ('', 0);
	my $sel = IO::Select->new($s);
	my $end = time() + 30;
	while (time() < $end && $sel->can_read($end - time())) {
		my $n = sysread($s, $buf, 16384, length $buf);
		if (!$n) {
			$eof = 1;
			last;
		}
		select(undef, undef, undef, 0.001);
	}
	my @got;
	for my $ho (0, 1, 0) {
		my $len = PortierTest::response_length($buf, $ho) or last;
		push @got, PortierTest::parse_response(substr($buf, 0, $len), $ho);
		$buf = substr($buf, $len);
	}
	is(scalar @got, 3, "$path read slowly: all three responses");
	ok(@got == 3 && $got[0]{body} eq $large, "$path: intact");
	ok(@got == 3 && $got[1]{headers}{'content-length'} == length $large
		&& $got[1]{body} eq '', "$path, then HEAD: the length, no body");
	ok(@got == 3 && $got[2]{body} eq $file, "$path, then the pipelined GET");
	ok($eof && $buf eq '', "$path, then the close, nothing more");
}

# ---- an error after the head was sent ------------------------------------------
for my $dir ('files', 'nosf') {
	# The file shrinks while it is sent: the response can only be cut,
	# and the connection must close (not hang, not be reused).
	my $path = $t->write_file("www/$dir/shrinks.txt", 'z' x (32 << 20));
	my $s = connect_raw($t, rcvbuf => 16384);
	write_all($s, req('GET', "/$dir/shrinks.txt") . req('GET', '/after'));
	my $sel = IO::Select->new($s);
	my $buf = '';
	sysread($s, $buf, 16384) if $sel->can_read(5);
	like($buf, qr{^HTTP/1\.1 200 }, "$dir: the file is being sent");
	truncate($path, 1 << 20) or die "truncate: $!";
	my $r = read_responses($s, 2, until_eof => 1, timeout => 20);
	$buf .= $r->{rest};
	ok($r->{eof}, "$dir: a file cut short closes the connection");
	ok(!@{ $r->{responses} } && length($buf) < (32 << 20)
		&& $buf !~ m{\AHTTP/1\.1 .*HTTP/1\.1 }s,
		"$dir: the response is cut, the next request not answered");
}

# ---- keepalive_requests -------------------------------------------------------
{
	my $s = connect_raw($t);
	my @conn;
	for my $i (1 .. 3) {
		write_all($s, req('GET', "/kr/$i"));
		my $r = read_responses($s, 1, until_eof => $i == 3);
		push @conn, conn_hdr($r->{responses}[0]) || 'keep';
		ok($r->{eof}, 'keepalive_requests 3: closed after the third')
			if $i == 3;
	}
	is(join(',', @conn), 'keep,keep,close',
		'keepalive_requests 3: the third response says close');

	$s = connect_raw($t);
	write_all($s, join('', map { req('GET', "/kr/p$_") } 1 .. 5));
	my $r = read_responses($s, 5, until_eof => 1);
	is(scalar @{ $r->{responses} }, 3,
		'keepalive_requests 3: of 5 pipelined requests, 3 answered');
	ok($r->{eof}, 'keepalive_requests 3: then the connection closes');
}

# ---- keepalive_timeout ----------------------------------------------------------
{
	my $s = connect_raw($t);
	write_all($s, req('GET', '/kt1/x'));
	my $r = read_responses($s, 1);
	is(conn_hdr($r->{responses}[0]), '', 'keepalive_timeout 1s: kept alive');
	my $w = wait_eof($s, 10);
	ok($w->{eof} && $w->{bytes} == 0,
		'keepalive_timeout 1s: the idle connection is closed');
	cmp_ok($w->{elapsed}, '>=', 0.8, 'keepalive_timeout 1s: not before');
	cmp_ok($w->{elapsed}, '<', 5, 'keepalive_timeout 1s: soon after');

	$s = connect_raw($t);
	write_all($s, req('GET', '/kt0/x') . req('GET', '/after'));
	$r = read_responses($s, 2, until_eof => 1);
	is(scalar @{ $r->{responses} }, 1,
		'keepalive_timeout 0: one response only');
	is(conn_hdr($r->{responses}[0]), 'close',
		'keepalive_timeout 0: the response says close');
	ok($r->{eof}, 'keepalive_timeout 0: the connection closes');
}

# ---- graceful exit with a response in progress ---------------------------------
{
	# The head went out before QUIT, so it promised keep-alive; the
	# connection must still close once the response is done, or the
	# worker would wait for it for keepalive_timeout.
	my $s = connect_raw($t, rcvbuf => 16384);
	write_all($s, req('GET', '/files/large.txt'));
	my $sel = IO::Select->new($s);
	my $buf = '';
	sysread($s, $buf, 16384) if $sel->can_read(5);
	like($buf, qr{^HTTP/1\.1 200 }, 'QUIT: a response in progress');
	$t->signal('QUIT');
	my $eof = 0;
	my $end = time() + 20;
	while (time() < $end && $sel->can_read($end - time())) {
		my $n = sysread($s, $buf, 65536, length $buf);
		if (!$n) {
			$eof = 1;
			last;
		}
	}
	my $len = PortierTest::response_length($buf);
	ok($len && $len == length $buf, 'QUIT: the response completes');
	ok($eof, 'QUIT: then the connection closes');
	ok(PortierTest::wait_for(sub {
		waitpid($t->master_pid, POSIX::WNOHANG()) == $t->master_pid
	}, 10), 'QUIT: the server exits');
	$t->{pid} = undef;
}

done_testing;
