#!/usr/bin/perl
# Request smuggling and response splitting through the proxy: whatever a
# client sends, the backend must see exactly the requests portier parsed,
# each framed by portier (its own Content-Length or chunks), never bytes
# of one request read as another; whatever a backend sends, a client
# must get exactly one response per request, never bytes of one
# response read as the next.
#
# The request vectors are the corpus after __END__ (the format of
# t/unit/data/http_requests.txt, read by PortierHTTP::read_corpus; adding
# a case adds no code), each run twice: through an upstream without
# keep-alive, and through one whose connections are pooled and reused.
# The backend is PortierBackend (its request log is what it parsed); the
# response side uses a scripted raw backend written here, since the
# point is bytes no well-behaved server sends.
#
# The request vectors of llhttp (../shared/vectors, if present) are
# replayed too, with a generic check: the backend never sees a malformed
# request, nor more requests than llhttp found messages.
#
# The negative checks ("the backend never saw /smuggled") are made only
# after a barrier: every backend connection process has exited (no
# keep-alive: the backend has read everything to its EOF), or a later
# sentinel request was logged on the reused connection.
use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/lib";
use IO::Select;
use IO::Socket::INET;
use POSIX qw(_exit);
use Socket qw(IPPROTO_TCP TCP_NODELAY);
use PortierTest;
use PortierHTTP;
use PortierBackend;
use Test::More;
use Time::HiRes qw(time sleep);

PortierTest::need_modules(qw(proxy));

my $t = PortierTest->new;
my $be = PortierBackend->new(name => 'smug', dir => $t->dir,
	port => $t->port(1));
# what the raw backend answers (the response splitting tests, below)
my %SCRIPT = (
	# a second response glued to the first
	'/raw/glued' => ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
		. "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Evil: 1\r\n\r\n"
		. 'smuggled'],
	# the same, the second arriving later on the idle connection
	'/raw/late' => ["HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
		"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Evil: 1\r\n\r\n"
		. 'smuggled'],
	# a body to HEAD, to 204, to 304: not theirs to have
	'/raw/headbody' => ["HTTP/1.1 200 OK\r\nContent-Length: 66\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Evil: 1\r\n\r\n"
		. 'smuggled'],
	'/raw/204body' => ["HTTP/1.1 204 No Content\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Evil: 1\r\n\r\n"
		. 'smuggled'],
	'/raw/204glued' => ["HTTP/1.1 204 No Content\r\n\r\n"
		. "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Evil: 1\r\n\r\n"
		. 'smuggled'],
	'/raw/304body' => ["HTTP/1.1 304 Not Modified\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Evil: 1\r\n\r\n"
		. 'smuggled'],
	# a chunked body followed by more
	'/raw/chunkedmore' => ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
		. "\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Evil: 1\r\n\r\n"
		. 'smuggled'],
	# header injection attempts: a bare CR, a bare LF
	'/raw/cr' => ["HTTP/1.1 200 OK\r\nX-A: a\rSet-Cookie: evil=1\r\n"
		. "Content-Length: 2\r\n\r\nok"],
	'/raw/lf' => ["HTTP/1.1 200 OK\r\nX-A: a\nSet-Cookie: evil=1\r\n"
		. "Content-Length: 2\r\n\r\nok"],
	# an empty line where a header was expected, then a response
	'/raw/crlfcrlf' => ["HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
		. "X-A: a\r\n\r\nokHTTP/1.1 200 OK\r\nX-Evil: 1\r\n"
		. "Content-Length: 8\r\n\r\nsmuggled"],
	# a 100 Continue, then a final response with a glued second one
	'/raw/interim' => ["HTTP/1.1 100 Continue\r\n\r\n"
		. "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"
		. "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Evil: 1\r\n\r\n"
		. 'smuggled'],
	# Content-Length and chunked: refused whatever the order
	'/raw/tecl' => ["HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		. "Content-Length: 44\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
		. "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nX-Evil: 1\r\n\r\n"
		. 'smuggled'],
);

my $raw = raw_backend($t->port(2), $t->dir . '/raw');

$t->config(<<'EOF')->run;
upstreams = {
  nk = { keepalive = 0;
         servers = ( { address = "127.0.0.1:%%PORT_1%%"; max_fails = 0; } ); };
  ka = { servers = ( { address = "127.0.0.1:%%PORT_1%%"; max_fails = 0; } ); };
  raw = { servers = ( { address = "127.0.0.1:%%PORT_2%%"; max_fails = 0; } ); };
};
servers = ( {
  listen = "127.0.0.1:%%PORT_0%%";
  client_max_body_size = 0;
  proxy_next_upstream = "off";
  locations = (
    { path = "/"; proxy_pass = "nk"; },
    { path = "/nk/"; proxy_pass = "nk"; },
    { path = "/ka/"; proxy_pass = "ka"; },
    { path = "/raw/"; proxy_pass = "raw"; }
  );
} );
EOF

# ---- request smuggling: the corpus ---------------------------------------

my @cases = read_corpus(\*DATA);
ok(@cases > 30, scalar(@cases) . ' request vectors');

# Wait until the backend has read everything sent to it: none of its
# connections is open any more (nk), or only the pooled one once a
# sentinel came (ka). A connection counts from the moment the kernel has
# it (still in the accept queue) until the backend's process closed it
# (it has logged what it read by then): its sockets on the backend's
# port that are ESTABLISHED, SYN_RECV or CLOSE_WAIT, in /proc/net/tcp.
sub backend_sockets {
	my $port = sprintf '%04X', $be->port;
	open my $fh, '<', '/proc/net/tcp' or return 0;
	my $n = 0;
	while (my $l = <$fh>) {
		my @f = split ' ', $l;
		next unless @f > 3 && $f[1] =~ /:$port$/;
		$n++ if $f[3] eq '01' || $f[3] eq '03' || $f[3] eq '08';
	}
	close $fh;
	return $n;
}

sub barrier {
	my ($max) = @_;
	return PortierTest::wait_for(sub { backend_sockets() <= $max }, 10);
}

my $seq = 0;
# without keep-alive first: the barrier is then "no backend connection
# left", which the pooled connections of the second run would spoil
run_case($_, 'nk') for @cases;
llhttp_all();
run_case($_, 'ka') for @cases;

# Does a list of statuses match one of the expected sequences?
sub status_ok {
	my ($got, $alts) = @_;
	return scalar grep { $_ eq $got } @$alts;
}

sub run_case {
	my ($c, $pre) = @_;
	my $name = "$c->{name} [$pre]";
	my %k = map { $_ => $c->{keys}{$_}[0] } keys %{ $c->{keys} };
	my $wire = $c->{wire} =~ s/@/\/$pre/gr;
	my @alts = @{ $c->{keys}{status} };
	my ($n) = sort { $b <=> $a } map { my @w = split ' '; scalar @w } @alts;
	$be->clear;

	my $s = connect_raw($t);
	write_all($s, $wire);
	# a refusal closes the connection; else stop at the expected count
	my $rr = read_responses($s, $n, until_eof => !grep({ /^[12]\d\d$/ }
		map { (split ' ')[-1] } @alts), timeout => 5);
	close $s;
	my @st = map { $_->{status} } @{ $rr->{responses} };
	push @st, 'close' unless @st;
	ok(status_ok("@st", \@alts), "$name: the client gets "
		. join(' or ', @alts)) or diag("got: @st");

	if ($pre eq 'ka') {
		# the pooled connection, if kept, serves the sentinel next
		$seq++;
		my $r = $t->get("/ka/sentinel$seq");
		ok($r->{status} == 200 && $r->{body} eq "smug\n"
			&& ($r->{headers}{'x-backend'} // '') eq 'smug',
			"$name: the next request gets its own answer");
		PortierTest::wait_for(sub {
			grep { $_->{target} eq "/ka/sentinel$seq" } $be->requests },
			10);
	}
	ok(barrier($pre eq 'ka' ? 1 : 0), "$name: the backend is done");

	my @q = grep { $_->{target} !~ m{^/ka/sentinel} } $be->requests;
	my $want = ($k{backend} // '-') =~ s/@/\/$pre/gr;
	my @want = $want eq '-' ? () : split ' ', $want;
	my @got = map { $_->{target} } @q;
	# "?": the head may have gone before the body failed; "!": then the
	# backend saw it cut (the proxy abandoned it, closing the connection)
	my ($i, $bad) = (0, 0);
	for my $w (@want) {
		my ($target, $opt, $cut) = $w =~ /^(.*?)(\?)?(!)?$/;
		if ($i < @got && $got[$i] eq $target) {
			my $err = $q[$i]{error} // '';
			$bad++ if $cut ? $err !~ /eof/ : $err ne '';
			$i++;
			next;
		}
		$bad++ unless $opt;
	}
	$bad++ if $i < @got;
	ok(!$bad, "$name: the backend saw " . ($want eq '-' ? 'nothing'
		: "only $want")) or diag("backend saw: "
		. join(' ', map { $_->{target} . ($_->{error}
			? "($_->{error})" : '') } @q));
	ok(!grep({ $_->{error} && $_->{error} !~ /eof/ } @q),
		"$name: every request the backend saw was well-formed");
	for my $j (0 .. $#{ $c->{keys}{body} // [] }) {
		is($q[$j]{body}, $c->{keys}{body}[$j] =~ s/@/\/$pre/gr,
			"$name: body of request " . ($j + 1) . ' as framed');
	}
	for my $h (@{ $c->{keys}{header} // [] }) {
		my ($hn, $hv) = split /: ?/, $h, 2;
		my $got = $q[0]{header}{lc $hn};
		# the proxy's own "Connection: close" to an upstream that keeps
		# no connection (nk) is not the client's field passed on
		undef $got if $pre eq 'nk' && lc $hn eq 'connection'
			&& defined $got && $got eq 'close';
		is($got, $hv eq '-' ? undef : $hv, "$name: the backend's $hn");
	}
}

# ---- the llhttp request vectors, through the proxy -----------------------

# Whatever portier makes of llhttp's request vectors, the backend must
# see only well-formed requests, no more complete ones than llhttp found
# messages (before its error, if any), and the client no more answers
# from the backend than the backend had requests. (Which vectors portier
# accepts is t/unit/test_http_parse.c's business.)
sub llhttp_all {
	my $dir = $ENV{PORTIER_VECTORS}
		// "$PortierTest::TOP/../shared/vectors";
	my @files = glob "$dir/llhttp/request/*.md";
	SKIP: {
		skip "no llhttp vectors in $dir", 2 unless @files;
		my ($n, $bad, $seen) = (0, 0, 0);
		for my $v (map { llhttp_vectors($_) } @files) {
			$n++;
			my $r = llhttp_case($v);
			$bad++ if $r < 0;
			$seen += $r > 0;
		}
		ok($n > 100 && $seen > 50, "$n llhttp request vectors replayed, "
			. "$seen reached the backend");
		is($bad, 0, 'llhttp vectors: the backend saw only what portier '
			. 'framed');
	}
}

# The vectors of one file: { name, type, bytes, complete, error }.
sub llhttp_vectors {
	my ($file) = @_;
	open my $fh, '<', $file or return ();
	my ($title, $type, $skip, $in, @out, $v) = ('', '', 0);
	(my $base = $file) =~ s{.*/}{};
	while (my $l = <$fh>) {
		chomp $l;
		if (!$in && $l =~ /^#+\s*(.*)$/) {
			$title = $1;
		} elsif (!$in && $l =~ /<!-- meta=.*"type":\s*"([^"]+)"/) {
			$type = $1;
			$skip = $l =~ /"skipBody":\s*true/;
		} elsif (!$in && $l =~ /^```(http|log)\s*$/) {
			$in = $1;
			$v = { name => "$base: $title", type => $type,
				skip_body => $skip, http => [], log => [] }
				if $in eq 'http';
		} elsif ($in && $l =~ /^```/) {
			push @out, $v if $in eq 'log' && $v;
			$in = '';
		} elsif ($in) {
			push @{ $v->{$in} }, $l if $v;
		}
	}
	close $fh;
	for my $v (@out) {
		$v->{bytes} = llhttp_bytes(join "\n", @{ $v->{http} });
		my @log = @{ $v->{log} };
		$v->{complete} = grep { /message complete/ } @log;
		$v->{error} = @log && $log[-1] =~ / error code=/
			&& $log[-1] !~ /reason="Pause on/;
	}
	return grep { $_->{type} =~ /^request/ } @out;
}

# As llhttp's harness: lines joined by CRLF, backslash-newline joins,
# escapes \r \n \t \f \xHH \NNN.
sub llhttp_bytes {
	my ($s) = @_;
	my %e = (r => "\r", n => "\n", t => "\t", f => "\f");
	$s =~ s/(\\\n)|(\n)|\\([rntf])|\\x([0-9a-fA-F]{1,2})|\\([0-7]{1,3})/
		defined $1 ? '' : defined $2 ? "\r\n" : defined $3 ? $e{$3}
		: defined $4 ? chr(hex $4) : chr(oct $5)/ge;
	return $s;
}

sub llhttp_case {
	my ($v) = @_;
	my $wire = $v->{bytes};
	# an HTTP/1.1 request without Host is refused before anything else
	my $end = index($wire, "\r\n\r\n");
	my $line = index($wire, "\r\n");
	if ($line > 0 && ($end < 0 || substr($wire, 0, $end) !~ /\r\nHost:/i)) {
		substr($wire, $line + 2, 0) = "Host: localhost\r\n";
	}
	my $refuse = $v->{error} || $v->{type} =~ /lenient/;
	# what to wait for: the close of a refusal, else llhttp's messages
	# (none when it skipped bodies never sent: portier waits for them)
	my $want = $refuse ? 1 : $v->{skip_body} ? 0 : $v->{complete};
	$be->clear;
	my $s = connect_raw($t);
	write_all($s, $wire);
	my $rr = read_responses($s, $want, until_eof => $refuse, timeout => 2,
		head_only => [ ($wire =~ /^HEAD /) x ($want + 1) ]);
	close $s;
	barrier(0);
	my @q = $be->requests;
	my @whole = grep { !$_->{error} } @q;
	my $from_backend = grep { ($_->{headers}{'x-backend'} // '') eq 'smug' }
		@{ $rr->{responses} };
	my @why;
	push @why, 'a malformed request reached the backend: '
		. join(', ', map { "$_->{target} ($_->{error})" }
			grep { $_->{error} && $_->{error} !~ /eof/ } @q)
		if grep { $_->{error} && $_->{error} !~ /eof/ } @q;
	push @why, scalar(@whole) . " requests at the backend for "
		. "$v->{complete} messages" if @whole > $v->{complete};
	push @why, "$from_backend answers for " . scalar(@whole)
		. ' requests' if $from_backend > @whole;
	diag("$v->{name} ($v->{type}): @why") if @why;
	return @why ? -1 : @q ? 1 : 0;
}

# ---- response splitting: a scripted backend ------------------------------

# A backend that answers each request with the bytes scripted for its
# path (pieces written separately, then a marker file), and otherwise
# "HTTP/1.1 200", body the path. Request lines go to raw.log (to read
# with TEST_KEEP).
sub raw_backend {
	my ($port, $base) = @_;
	my $l = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
		LocalPort => $port, Listen => 128, ReuseAddr => 1)
		or die "raw backend: $!";
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		setpgrp(0, 0);
		$SIG{CHLD} = 'IGNORE';
		$SIG{PIPE} = 'IGNORE';
		my $parent = getppid();
		my $cid = 0;
		while (1) {
			if (!IO::Select->new($l)->can_read(1)) {
				_exit(0) if getppid() != $parent;
				next;
			}
			my $c = $l->accept or next;
			$cid++;
			my $k = fork;
			if (defined $k && $k == 0) {
				raw_conn($c, $cid, $base);
				_exit(0);
			}
			close $c;
		}
	}
	close $l;
	return { pid => $pid, base => $base };
}

sub raw_conn {
	my ($c, $cid, $base) = @_;
	my $buf = '';
	# each piece leaves at once: Nagle would hold a late piece until
	# the next request's ACK, after which nobody can tell it from the
	# answer to that request
	setsockopt($c, IPPROTO_TCP, TCP_NODELAY, 1);
	while (1) {
		while ($buf !~ /\r\n\r\n/) {
			my $n = sysread($c, $buf, 65536, length $buf);
			return unless $n;
		}
		$buf =~ s/^(.*?)\r\n\r\n//s;
		my ($method, $path) = $1 =~ m{^(\S+) (\S+)};
		$path //= '?';
		open my $log, '>>', "$base.log";
		syswrite($log, "$cid $method $path\n");
		close $log;
		my $pieces = $SCRIPT{$path}
			// ["HTTP/1.1 200 OK\r\nContent-Length: " . length($path)
				. "\r\n\r\n$path"];
		(my $mark = $path) =~ s{\W}{_}g;
		for my $i (0 .. $#$pieces) {
			# the next piece once the client has the first answer,
			# so it finds the connection idle in the pool
			PortierTest::wait_for(sub { -e "$base.got$mark" }, 10)
				if $i > 0;
			syswrite($c, $pieces->[$i]);
		}
		open my $m, '>', "$base.done$mark";
		close $m;
	}
}

sub raw_done {
	my ($path) = @_;
	(my $mark = $path) =~ s{\W}{_}g;
	my $f = "$raw->{base}.done$mark";
	return PortierTest::wait_for(sub { -e $f }, 10);
}

END {
	kill 'TERM', -$raw->{pid}
		if $raw && $raw->{pid} && $$ == $PortierTest::MAIN_PID;
}

# One request, then another on the same client connection: the second
# must get the backend's answer to it, never the leftovers of the first.
for my $case (
	['GET', '/raw/glued', '200 hello', 'a second response glued to the first'],
	['GET', '/raw/late', '200 hello',
		'a second response arriving on the idle connection'],
	['HEAD', '/raw/headbody', '200 ', 'a body after a response to HEAD'],
	['GET', '/raw/204body', '204 ', 'a body after a 204'],
	['GET', '/raw/204glued', '204 ', 'a response glued to a 204'],
	['GET', '/raw/304body', '304 ', 'a body after a 304'],
	['GET', '/raw/chunkedmore', '200 hello', 'bytes after the last chunk'],
	['GET', '/raw/interim', '200 hello', 'bytes after a 100 and a 200'],
	['GET', '/raw/crlfcrlf', '200 ok', 'a response after an empty line'],
	['GET', '/raw/tecl', '502 ', 'Transfer-Encoding with Content-Length'],
	['GET', '/raw/cr', '502 ', 'a bare CR in a header value'],
	['GET', '/raw/lf', '502 ', 'a bare LF in a header value'],
) {
	my ($method, $path, $want, $what) = @$case;
	unlink map { "$raw->{base}.$_" . ($path =~ s{\W}{_}gr) } qw(done got);
	my $s = connect_raw($t);
	write_all($s, "$method $path HTTP/1.1\r\nHost: x\r\n\r\n");
	my $rr = read_responses($s, 1, head_only => [$method eq 'HEAD'],
		timeout => 10);
	{ open my $got, '>', "$raw->{base}.got" . ($path =~ s{\W}{_}gr); }
	my $r = $rr->{responses}[0] // { status => 0, body => '' };
	my $got = $r->{status} == 502 ? '502 ' : "$r->{status} $r->{body}";
	is($got, $want, "response splitting, $what: the first answer");
	unlike($r->{raw} // '', qr/X-Evil|smuggled|Set-Cookie/,
		"response splitting, $what: nothing of the rest relayed");
	ok(raw_done($path), "response splitting, $what: the backend sent all");
	my $next = "/raw/next-$path" =~ s{/raw/next-/raw/}{/raw/next-}r;
	if ($rr->{eof} || $r->{status} == 502) {
		close $s;
		$s = connect_raw($t);
	}
	write_all($s, "GET $next HTTP/1.1\r\nHost: x\r\n\r\n");
	$rr = read_responses($s, 1, timeout => 10);
	$r = $rr->{responses}[0] // { status => 0, body => '', raw => '' };
	is("$r->{status} $r->{body}", "200 $next",
		"response splitting, $what: the next request gets its own answer");
	unlike($r->{raw} . $rr->{rest}, qr/X-Evil|smuggled/,
		"response splitting, $what: never the smuggled response");
	close $s;
}

done_testing();

__END__
# Request vectors. Keys:
#   status S...   what the client gets, in order ("close": nothing)
#   backend T...  the targets the backend sees, in order ("-": none);
#                 "T?" may be missing (the head may have gone before the
#                 body failed), "T!" was cut off (the backend saw the
#                 connection close in its body)
#   body B        the body the backend saw, per request in order
#   header N: V   a field of the first request at the backend ("-": none)
# "@" in wire lines, targets and bodies is the location prefix, "/nk"
# (no keep-alive) or "/ka" (pooled): lengths are the same for both.
# A key given twice (status) lists alternatives.

=== CL and TE: refused
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Content-Length: 4
| Transfer-Encoding: chunked
|
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== TE and CL: refused
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
| Content-Length: 40
|
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== two different Content-Length
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Content-Length: 0
| Content-Length: 35
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== two equal Content-Length fields
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Content-Length: 3
| Content-Length: 3
|
| abc

=== a Content-Length list
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Content-Length: 3, 3
|
| abc

=== Content-Length with a sign
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Content-Length: +3
|
| abc

=== Content-Length in hex
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Content-Length: 0x3
|
| abc

=== Content-Length negative
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Content-Length: -1
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== Content-Length overflowing 64 bits
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Content-Length: 18446744073709551620
|
| abc

=== Content-Length with whitespace around: fine
status 200
backend @/a
body abc
header Content-Length: 3
| POST @/a HTTP/1.1
| Host: x
| Content-Length:  3\x20
|
| abc

=== a body on GET hides a request: it stays a body
status 200
backend @/a
body GET @/smuggled HTTP/1.1\r\nHost: x\r\n\r\n
| GET @/a HTTP/1.1
| Host: x
| Content-Length: 38
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== Content-Length named by Connection is still sent
status 200
backend @/a
body GET @/smuggled HTTP/1.1\r\nHost: x\r\n\r\n
header Content-Length: 38
| GET @/a HTTP/1.1
| Host: x
| Connection: Content-Length, Transfer-Encoding, Host
| Content-Length: 38
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== a shorter Content-Length: the rest is the next request
status 200 200
backend @/a @/second
body abc
| POST @/a HTTP/1.1
| Host: x
| Content-Length: 3
|
| abcGET @/second HTTP/1.1
| Host: x
|

=== chunked, then a pipelined request
status 200 200
backend @/a @/second
body hello
header Transfer-Encoding: chunked
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| 5
| hello
| 0
|
| GET @/second HTTP/1.1
| Host: x
|

=== chunked with a request inside a chunk: data
status 200
backend @/a
body GET @/smuggled HTTP/1.1\r\nHost: x\r\n\r\n
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| 26
| GET @/smuggled HTTP/1.1
| Host: x
|
|
| 0
|

=== chunk size not hex
status 400
backend @/a?!
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| zz
| hello
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== chunk size negative
status 400
backend @/a?!
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| -5
| hello
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== chunk size with 0x
status 400
backend @/a?!
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| 0x5
| hello
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== chunk size overflowing 64 bits
status 400
backend @/a?!
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| 10000000000000005
| hello
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== chunk size with a space inside
status 400
backend @/a?!
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| 5 5
| hello
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== chunk size with a leading space
status 400
backend @/a?!
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
|  5
| hello
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== chunk size line ended by a bare LF
status 400
backend @/a?!
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| 5\nhello
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== chunk data longer than its size
status 400
backend @/a?!
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| 3
| hello
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== chunk data shorter than its size
status 400
backend @/a?!
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| 8
| hello
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== chunk extension with a bare CR
status 400
backend @/a?!
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| 5;a\rb
| hello
| 0
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== a trailer section with a request inside
status 400
backend @/a?!
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
|
| 5
| hello
| 0
| GET @/smuggled HTTP/1.1
| Host: x
|

=== chunked named twice
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked
| Transfer-Encoding: chunked
|
| 5
| hello
| 0
|

=== a coding other than chunked last
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: chunked, gzip
|
| 0
|

=== an unknown coding
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: xchunked
|
| 0
|

=== Transfer-Encoding with a space before the colon
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding : chunked
|
| 0
|

=== Transfer-Encoding folded
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding:
|  chunked
|
| 0
|

=== Transfer-Encoding with a vertical tab
status 400
backend -
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: \x0bchunked
|
| 0
|

=== Transfer-Encoding in HTTP/1.0
status 400
backend -
| POST @/a HTTP/1.0
| Host: x
| Transfer-Encoding: chunked
|
| 0
|

=== chunked in another case: fine
status 200
backend @/a
body hello
| POST @/a HTTP/1.1
| Host: x
| Transfer-Encoding: ChUnKeD
|
| 5
| hello
| 0
|

=== an obs-folded header line
status 400
backend -
| GET @/a HTTP/1.1
| Host: x
| X-A: 1
|  GET @/smuggled HTTP/1.1
|

=== header lines ended by a bare LF
status 400
backend -
| GET @/a HTTP/1.1\
| \nHost: x\nX-A: 1\n\nGET @/smuggled HTTP/1.1\nHost: x\n

=== a bare CR in a header value
status 400
backend -
| GET @/a HTTP/1.1
| Host: x
| X-A: 1\rGET @/smuggled HTTP/1.1
|

=== a NUL in a header value
status 400
backend -
| GET @/a HTTP/1.1
| Host: x
| X-A: 1\0
|

=== a space in a field name
status 400
backend -
| GET @/a HTTP/1.1
| Host: x
| Content Length: 5
|

=== whitespace before the first field
status 400
backend -
| GET @/a HTTP/1.1
|  Host: x
| Host: y
|

=== two Host fields
status 400
backend -
| GET @/a HTTP/1.1
| Host: x
| Host: y
|

=== two spaces in the request line
status 400
backend -
| GET  @/a HTTP/1.1
| Host: x
|

=== a request line with a bare CR
status 400
backend -
| GET @/a\rHTTP/1.1
| Host: x
|

=== a target with a space encoded as a raw byte
status 400
backend -
| GET @/a b HTTP/1.1
| Host: x
|

=== HTTP/1.0 with a body and keep-alive, then another
status 200 200
backend @/a @/second
body abc
| POST @/a HTTP/1.0
| Host: x
| Connection: keep-alive
| Content-Length: 3
|
| abcGET @/second HTTP/1.1
| Host: x
|

=== Expect: 100-continue with the body sent at once
status 100 200
backend @/a
body abc
| POST @/a HTTP/1.1
| Host: x
| Expect: 100-continue
| Content-Length: 3
|
| abc

=== Upgrade without Connection: upgrade, with a body
status 200
backend @/a
body GET @/smuggled HTTP/1.1\r\nHost: x\r\n\r\n
header Upgrade: -
| POST @/a HTTP/1.1
| Host: x
| Upgrade: websocket
| Content-Length: 38
|
| GET @/smuggled HTTP/1.1
| Host: x
|

=== Connection: upgrade without Upgrade, with a body
status 200
backend @/a
body GET @/smuggled HTTP/1.1\r\nHost: x\r\n\r\n
header Connection: -
| POST @/a HTTP/1.1
| Host: x
| Connection: upgrade
| Content-Length: 38
|
| GET @/smuggled HTTP/1.1
| Host: x
|
