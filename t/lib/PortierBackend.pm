package PortierBackend;

# A scriptable HTTP/1.1 origin server for the reverse proxy tests. Each
# backend is a forked Perl process listening on loopback (or a unix
# socket) that forks again per connection, so a slow or stuck answer on
# one connection never holds up another and a few hundred (up to 1,000)
# concurrent keep-alive connections cost little. What it answers is
# chosen by the REQUEST, so one backend serves every scenario of a test:
#
#   my $b = PortierBackend->new(name => 'b1', dir => $t->dir);
#   ... "server 127.0.0.1:" . $b->port ...
#   my @seen = $b->requests;      # what reached the backend, in order
#
# Commands, found as the first path segment that names one (so /api/echo
# is /echo behind a proxy that keeps a prefix), combined with query
# parameters (values %XX-decoded):
#
#   (default)        200, "X-Backend: NAME", body "NAME\n"
#   /status/NNN      answer with that status
#   /echo            body = the request head as received, then its body,
#                    streamed back as it arrives (?body_only=1: the body
#                    alone); a client that echoes a large body must read
#                    while it sends, or use /sha1
#   /sha1            body "SHA1HEX LENGTH\n" of the request body, also in
#                    X-Body-Sha1 and X-Body-Length
#   /reset           close with a reset (SO_LINGER 0), no answer
#   /reset_mid       head for ?size=N bytes, ?part=M of them (default
#                    N/2), then a reset
#   /die             the whole backend exits (its port refuses)
#   /garbage         bytes that are not HTTP, then close
#   /bad/NAME        a malformed response, then close (see %BAD)
#   /ws              WebSocket handshake (RFC 6455), then frames echoed
#   /health          200 "ok" or 503 "fail" ($b->set_health, /set_health)
#   /set_health?v=0  set the health state, answers 200
#   /headers         the default answer (with ?h=, the point of it)
#
#   ?h=Name:Value    add a response header (repeatable); an added
#                    "Connection: close" also closes
#   ?delay=MS        wait before the head;  ?body_delay=MS between pieces
#   ?size=N          body of N bytes of pattern() (generated, any size)
#   ?piece=N         bytes per written piece or chunk (65536)
#   ?chunked=1       chunked (?trailers=1 adds trailer fields); ?close=1
#                    no length, the end is the close
#   ?read_delay=MS   read the request body ?read_piece=N (16384) bytes
#                    at a time with that pause: a slow upload reader
#   ?connection=close  answer with "Connection: close" and close
#   ?early=1         act (answer, reset, die) without reading the body;
#                    an answer then says close and the connection
#                    lingers (reads and drops) so the answer is not lost
#
# Options of new(): name, dir (where the request log and health file
# live; a temporary one otherwise), port (else the kernel picks), unix
# (a socket path instead of TCP), http10 (answer HTTP/1.0: close unless
# the request asked for keep-alive, never chunked), max_requests_per_conn,
# close_after (close after every answer), idle_close_ms (close a
# connection idle that long between requests), quiet_head (no X-Conn /
# X-Seq / Server headers), tls (a TLS server, see below).
#
# TLS: tls => { cert => FILE, key => FILE, ca => FILE } makes every
# connection start with a TLS handshake (IO::Socket::SSL) and keeps every
# behaviour above; with ca, a client certificate signed by it is required.
# One server context serves every connection, so its TLS 1.3 tickets
# resume on any later connection. Each handshake is logged: requests()
# carries tls_sni (the SNI name, '' if none), tls_client (the client
# certificate's subject, '' if none), tls_reused (1 if the session was
# resumed) and tls_version; handshakes() lists them all, failed ones
# with their error. tls_break => 'close' | 'reset' | 'hang' breaks every
# handshake: after reading the ClientHello, close, reset, or say nothing.
#
# Methods: port, unix, addr ("127.0.0.1:P" or "unix:PATH"), url(PATH),
# pid, name, dir, alive, wait_dead, stop (also at END and DESTROY),
# set_health(0|1), requests, connections, handshakes, wait_requests(N),
# wait_connections(N), clear. Functions: pattern(OFF, LEN),
# pattern_sha1(N), pattern_stream(N, PIECE), ws_client(...), ws_accept,
# ws_frame; %BAD holds the /bad/NAME bytes.
#
# Every request is logged (one line, written once the request is read
# and before anything is answered, so a test that has its answer sees it
# in requests()). Each answer carries X-Backend, X-Conn (connection id)
# and X-Seq (request number on that connection). The server processes
# close every descriptor inherited from the test and always leave with
# _exit: the test script's END blocks run only in it.

use strict;
use warnings;

use Digest::SHA ();
use Errno qw(EINTR EAGAIN);
use File::Temp qw(tempdir);
use IO::Handle;
use IO::Select;
use IO::Socket::INET;
use IO::Socket::SSL ();
use IO::Socket::UNIX;
use MIME::Base64 qw(encode_base64);
use POSIX qw(:sys_wait_h _exit);
use Scalar::Util qw(weaken);
use Socket qw(SOL_SOCKET SO_LINGER IPPROTO_TCP TCP_NODELAY SOCK_STREAM);
use Time::HiRes qw(time sleep);

our @INSTANCES;
our $MAIN_PID = $$;

my $WS_GUID = '258EAFA5-E914-47DA-95CA-C5AB0DC85B11';

my %REASON = (100 => 'Continue', 101 => 'Switching Protocols',
	200 => 'OK', 201 => 'Created', 204 => 'No Content',
	206 => 'Partial Content', 301 => 'Moved Permanently', 302 => 'Found',
	304 => 'Not Modified', 400 => 'Bad Request', 401 => 'Unauthorized',
	403 => 'Forbidden', 404 => 'Not Found', 408 => 'Request Timeout',
	413 => 'Content Too Large', 429 => 'Too Many Requests',
	500 => 'Internal Server Error', 502 => 'Bad Gateway',
	503 => 'Service Unavailable', 504 => 'Gateway Timeout');

# Malformed responses of /bad/NAME, each sent whole and then closed.
our %BAD = (
	cl_te => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
		. "Transfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	neg_cl => "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\nhello",
	two_cl => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n"
		. "Content-Length: 6\r\n\r\nhello!",
	big_cl => "HTTP/1.1 200 OK\r\n"
		. "Content-Length: 99999999999999999999999\r\n\r\nhello",
	cl_list => "HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello",
	bad_status => "HTTP/1.1 2x0 OK\r\nContent-Length: 5\r\n\r\nhello",
	short_status => "HTTP/1.1 20 OK\r\nContent-Length: 5\r\n\r\nhello",
	bad_version => "HTTX/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	http2_version => "HTTP/2.0 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	http09 => "hello\n",
	lf_only => "HTTP/1.1 200 OK\nContent-Length: 5\nX-A: 1\n\nhello",
	no_colon => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nNoColonHere\r\n"
		. "\r\nhello",
	space_before_colon => "HTTP/1.1 200 OK\r\nContent-Length : 5\r\n"
		. "\r\nhello",
	obs_fold => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: 1\r\n"
		. " folded\r\n\r\nhello",
	nul_header => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A: a\0b\r\n"
		. "\r\nhello",
	bad_chunk => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
		. "zz\r\nhello\r\n0\r\n\r\n",
	chunk_overflow => "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
		. "\r\nffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
	te_not_chunked => "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n"
		. "\r\nhello",
	short_body => "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nhello",
	long_body => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"
		. "hello, and more bytes than announced",
	status_only => "HTTP/1.1 200 OK\r\n",
	no_end => "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n",
	empty => '',
	huge_header => "HTTP/1.1 200 OK\r\nX-Big: " . ('a' x 200000)
		. "\r\nContent-Length: 5\r\n\r\nhello",
	many_headers => "HTTP/1.1 200 OK\r\n"
		. join('', map { "X-H$_: $_\r\n" } 1 .. 2000)
		. "Content-Length: 5\r\n\r\nhello",
	early_hints => "HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"
		. "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	switching_unasked => "HTTP/1.1 101 Switching Protocols\r\n"
		. "Upgrade: websocket\r\nConnection: upgrade\r\n\r\nhello",
);

# ---- the test's side -------------------------------------------------------

# Start a backend. Returns the object once it listens (the socket is
# bound before the fork, so connections are accepted at once).
sub new {
	my ($class, %opt) = @_;
	my $self = bless {
		name => 'backend',
		%opt,
		owner => $$,
	}, $class;
	$self->{dir} //= tempdir('portier-backend-XXXXXX', TMPDIR => 1,
		CLEANUP => !$ENV{TEST_KEEP});
	my $base = "$self->{dir}/backend-$self->{name}";
	$self->{log} = "$base.requests";
	$self->{health} = "$base.health";
	$self->{errors} = "$base.err";
	unlink $self->{log}, $self->{errors};
	$self->set_health(1);
	my $listen = $self->_listen;
	STDOUT->flush;
	STDERR->flush;
	my $pid = fork // die "fork: $!";
	if ($pid == 0) {
		eval { _server($self, $listen) };
		_exit(0);
	}
	close $listen;
	# also here: a stop() right after new() must find the group
	POSIX::setpgid($pid, $pid);
	$self->{pid} = $pid;
	push @INSTANCES, $self;
	weaken($INSTANCES[-1]);
	return $self;
}

sub _listen {
	my ($self) = @_;
	my $l;
	if (defined $self->{unix}) {
		unlink $self->{unix};
		$l = IO::Socket::UNIX->new(Local => $self->{unix},
			Type => SOCK_STREAM, Listen => 1024)
			or die "backend $self->{name}: $self->{unix}: $!";
		chmod 0777, $self->{unix};
		return $l;
	}
	$l = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
		LocalPort => $self->{port} // 0, Proto => 'tcp',
		Listen => 1024, ReuseAddr => 1)
		or die "backend $self->{name}: listen: $!";
	$self->{port} = $l->sockport;
	return $l;
}

sub name { $_[0]{name} }
sub port { $_[0]{port} }
sub unix { $_[0]{unix} }
sub pid { $_[0]{pid} }
sub dir { $_[0]{dir} }
sub log_path { $_[0]{log} }

# "127.0.0.1:PORT", or "unix:PATH".
sub addr {
	my ($self) = @_;
	return defined $self->{unix} ? "unix:$self->{unix}"
		: "127.0.0.1:$self->{port}";
}

sub url {
	my ($self, $path) = @_;
	my $scheme = $self->{tls} ? 'https' : 'http';
	return "$scheme://127.0.0.1:$self->{port}" . ($path // '/');
}

# True while the server process runs (it is reaped here once it left).
sub alive {
	my ($self) = @_;
	my $pid = $self->{pid} or return 0;
	return 1 if waitpid($pid, WNOHANG) == 0;
	delete $self->{pid};
	return 0;
}

# Wait (bounded) until the server process is gone, after /die.
sub wait_dead {
	my ($self, $timeout) = @_;
	return _wait_for(sub { !$self->alive }, $timeout // 10);
}

# Kill the backend and every connection process, and reap the server.
sub stop {
	my ($self) = @_;
	return unless $$ == $self->{owner};
	my $pid = delete $self->{pid};
	if ($pid) {
		kill 'TERM', -$pid;
		_wait_for(sub { waitpid($pid, WNOHANG) != 0 }, 5)
			or kill('KILL', -$pid), waitpid($pid, 0);
		# connection processes that ignored TERM mid-write
		kill 'KILL', -$pid;
	}
	unlink $self->{unix} if defined $self->{unix};
	if (-s $self->{errors} && !$self->{errors_shown}++) {
		my $msg = "backend $self->{name} reported:\n"
			. _slurp($self->{errors});
		Test::More->can('diag') ? Test::More::diag($msg)
			: print STDERR $msg;
	}
}

sub DESTROY {
	my ($self) = @_;
	$self->stop if $self->{pid};
}

END {
	if ($$ == $MAIN_PID) {
		$_->stop for grep { defined } @INSTANCES;
	}
}

# Health as /health reports it: 1 (200 "ok") or 0 (503 "fail").
sub set_health {
	my ($self, $v) = @_;
	_write_atomic($self->{health}, $v ? "1\n" : "0\n");
}

# Forget the requests and connections logged so far.
sub clear {
	my ($self) = @_;
	truncate $self->{log}, 0 if -e $self->{log};
}

# The requests seen, oldest first: hashes of conn (connection id), seq
# (its number on the connection, from 1), peer ("ip:port" or "unix"),
# time, method, target (raw), path, query ({ name => last value }),
# version, raw_headers (lines as received), headers ([name, value]
# list), header ({ lc name => values joined ", " }), body_length,
# body_sha1 (both '-' when ?early=1 left the body unread), body (when
# at most 4096 bytes), trailers ([name, value]), error (why it was not
# understood, if so).
sub requests {
	my ($self) = @_;
	my (%peer, %tls, @out);
	open my $fh, '<', $self->{log} or return ();
	while (my $l = <$fh>) {
		# a line being written is not yet complete
		next unless $l =~ s/\n\z//;
		my @f = map { _unescape($_) } split /\t/, $l, -1;
		my $kind = shift @f;
		if ($kind eq 'C') {
			$peer{ $f[0] } = $f[2];
			next;
		}
		if ($kind eq 'T') {
			$tls{ $f[0] } = _tls_hash(\@f);
			next;
		}
		next unless $kind eq 'R' && @f >= 12;
		my $r = _request_hash(\@f, \%peer);
		my $h = $tls{ $r->{conn} };
		$r->{"tls_$_"} = $h->{$_} for $h ? qw(sni client reused version)
			: ();
		push @out, $r;
	}
	close $fh;
	return @out;
}

sub _tls_hash {
	my ($f) = @_;
	my %h;
	@h{qw(conn time sni client reused version error)} = @$f;
	return \%h;
}

# The TLS handshakes, in order: hashes of conn, time, sni, client,
# reused, version, error ('' when it succeeded).
sub handshakes {
	my ($self) = @_;
	my @out;
	open my $fh, '<', $self->{log} or return ();
	while (my $l = <$fh>) {
		next unless $l =~ s/\n\z// && $l =~ /^T\t/;
		my @f = map { _unescape($_) } split /\t/, $l, -1;
		shift @f;
		push @out, _tls_hash(\@f);
	}
	close $fh;
	return @out;
}

sub _request_hash {
	my ($f, $peer) = @_;
	my %r;
	@r{qw(conn seq time method target version)} = @$f[0 .. 5];
	my @raw = length $f->[6] ? split(/\n/, $f->[6], -1) : ();
	@r{qw(body_length body_sha1)} = @$f[7, 8];
	my @trailers = length $f->[9] ? split(/\n/, $f->[9], -1) : ();
	$r{body} = substr($f->[10], 1) if $f->[10] =~ /^=/;
	$r{error} = $f->[11] if length $f->[11];
	$r{peer} = $peer->{ $r{conn} };
	$r{raw_headers} = \@raw;
	$r{headers} = [ map { _split_header($_) } @raw ];
	$r{trailers} = [ map { _split_header($_) } @trailers ];
	my %h;
	for (@{ $r{headers} }) {
		my $k = lc $_->[0];
		$h{$k} = exists $h{$k} ? "$h{$k}, $_->[1]" : $_->[1];
	}
	$r{header} = \%h;
	($r{path}, my $q) = split /\?/, $r{target} // '', 2;
	$r{query} = { map { @$_[0, 1] } _parse_query($q) };
	return \%r;
}

# Distinct connections accepted (with or without a request on them).
sub connections {
	my ($self) = @_;
	open my $fh, '<', $self->{log} or return 0;
	my $n = grep { /^C\t/ } <$fh>;
	close $fh;
	return $n;
}

# Wait (bounded) until at least n connections were accepted.
sub wait_connections {
	my ($self, $n, $timeout) = @_;
	return _wait_for(sub { $self->connections >= $n }, $timeout // 10);
}

# Wait (bounded) until at least n requests were logged; returns them.
sub wait_requests {
	my ($self, $n, $timeout) = @_;
	my @r;
	_wait_for(sub { (@r = $self->requests) >= $n }, $timeout // 10);
	return @r;
}

# The bytes of a ?size=N body from offset off: 16-byte lines, each the
# offset of its first byte as 15 hex digits and "\n", so any byte out of
# place shows and names its offset.
my @PATTERN_LOW = map { sprintf("%04x\n", $_ * 16) } 0 .. 4095;

sub _pattern_block {
	my $up = sprintf("%011x", $_[0]);
	return $up . join($up, @PATTERN_LOW);
}

sub pattern {
	my ($off, $len) = @_;
	my $block = $off >> 16;
	my $out = '';
	$out .= _pattern_block($block++)
		while length($out) < ($off & 0xffff) + $len;
	return substr($out, $off & 0xffff, $len);
}

# A closure returning the next piece (at most $piece bytes) of a
# pattern of $total bytes, or undef at the end. Memory: one block.
sub pattern_stream {
	my ($total, $piece) = @_;
	my ($off, $block, $cur) = (0, 0, '');
	return sub {
		return undef if $off >= $total;
		my $want = $total - $off;
		$want = $piece if $want > $piece;
		while (length $cur < $want) {
			$cur .= _pattern_block($block++);
		}
		my $out = substr($cur, 0, $want, '');
		$off += $want;
		return $out;
	};
}

my %PATTERN_SHA1;

# sha1 (hex) of the first n bytes of the pattern.
sub pattern_sha1 {
	my ($n) = @_;
	return $PATTERN_SHA1{$n} //= do {
		my $sha = Digest::SHA->new(1);
		my $next = pattern_stream($n, 1 << 20);
		while (defined(my $p = $next->())) {
			$sha->add($p);
		}
		$sha->hexdigest;
	};
}

# ---- helpers shared by both sides --------------------------------------------

sub _wait_for {
	my ($cond, $timeout) = @_;
	my $end = time() + $timeout;
	while (1) {
		my $r = $cond->();
		return $r if $r;
		return 0 if time() > $end;
		sleep(0.02);
	}
}

sub _slurp {
	my ($path) = @_;
	open my $fh, '<', $path or return undef;
	local $/;
	my $c = <$fh>;
	close $fh;
	return $c;
}

sub _write_atomic {
	my ($path, $content) = @_;
	open my $fh, '>', "$path.tmp$$" or die "$path: $!";
	print $fh $content;
	close $fh or die "$path: $!";
	rename "$path.tmp$$", $path or die "$path: $!";
}

# Log fields: printable ASCII stays, everything else (tab, newline,
# backslash, bytes) becomes \xHH.
sub _escape {
	my ($s) = @_;
	$s //= '';
	$s =~ s/([^\x20-\x5b\x5d-\x7e])/sprintf('\\x%02x', ord $1)/ge;
	return $s;
}

sub _unescape {
	my ($s) = @_;
	$s =~ s/\\x([0-9a-f]{2})/chr hex $1/ge;
	return $s;
}

sub _split_header {
	my ($line) = @_;
	my ($n, $v) = $line =~ /^([^:]*):[ \t]*(.*?)[ \t\r]*$/s;
	return defined $n ? [$n, $v] : [$line, undef];
}

sub _parse_query {
	my ($q) = @_;
	return () unless defined $q && length $q;
	my @out;
	for my $pair (split /&/, $q) {
		my ($k, $v) = split /=/, $pair, 2;
		$v //= '';
		s/%([0-9a-fA-F]{2})/chr hex $1/ge for $k, $v;
		push @out, [$k, $v];
	}
	return @out;
}

# ---- the server (in the forked process) -------------------------------------

# Accept, log the connection, fork a process for it. Leaves when the
# test process is gone, so a killed test leaves no server behind.
sub _server {
	my ($self, $listen) = @_;
	setpgrp(0, 0);
	$0 = "portier-test-backend $self->{name}";
	open STDIN, '<', '/dev/null';
	open STDERR, '>>', $self->{errors};
	_close_inherited(fileno $listen);
	$SIG{PIPE} = 'IGNORE';
	$SIG{CHLD} = 'IGNORE';
	$SIG{$_} = 'DEFAULT' for qw(TERM INT HUP QUIT __WARN__ __DIE__);
	my $parent = getppid();
	open my $log, '>>', $self->{log} or die "$self->{log}: $!";
	$self->{logfh} = $log;
	$self->{ssl_ctx} = _tls_context($self) if $self->{tls};
	my $sel = IO::Select->new($listen);
	my $cid = 0;
	while (1) {
		if (!$sel->can_read(1)) {
			next if getppid() == $parent;
			kill 'TERM', -getpgrp();
			_exit(0);
		}
		my $c = $listen->accept or next;
		$cid++;
		my $peer = defined $self->{unix} ? 'unix'
			: $c->peerhost . ':' . $c->peerport;
		_log_line($self, 'C', $cid, sprintf('%.6f', time()), $peer);
		my $pid = fork;
		if (!defined $pid) {
			print STDERR "backend $self->{name}: fork: $!\n";
			close $c;
			next;
		}
		if ($pid == 0) {
			close $listen;
			$0 = "portier-test-backend $self->{name} conn $cid";
			eval { _connection($self, $c, $cid); 1 }
				or print STDERR "backend $self->{name} conn $cid: $@";
			_exit(0);
		}
		close $c;
	}
}

# The test's sockets and files must not stay open in the backend's
# processes (a connection the test closes would not close).
sub _close_inherited {
	my (@keep) = @_;
	my %keep = map { $_ => 1 } 0, 1, 2, @keep;
	opendir my $d, '/proc/self/fd' or return;
	my @fds = grep { /^\d+$/ && !$keep{$_} } readdir $d;
	my $dfd = eval { fileno $d } // -1;
	closedir $d;
	POSIX::close($_) for grep { $_ != $dfd } @fds;
}

# One log line, written with one write(2) on an O_APPEND file shared by
# every process of the backend, so lines never interleave.
sub _log_line {
	my ($self, @f) = @_;
	my $line = join("\t", map { _escape($_) } @f) . "\n";
	syswrite($self->{logfh}, $line);
}

sub _log_request {
	my ($self, $c, $req, $body) = @_;
	my $stored = $body->{length} ne '-' && $body->{length} <= 4096
		? '=' . $body->{data} : '-';
	_log_line($self, 'R', $c->{cid}, $c->{seq}, sprintf('%.6f', time()),
		$req->{method}, $req->{target}, $req->{version},
		join("\n", @{ $req->{raw_headers} }), $body->{length},
		$body->{sha1}, join("\n", @{ $body->{trailers} }), $stored,
		$req->{error} // '');
}

# The server context of tls => { cert, key, ca }: made once, before the
# connections fork, so they share its session ticket keys.
sub _tls_context {
	my ($self) = @_;
	my $o = $self->{tls};
	my %a = (SSL_server => 1, SSL_cert_file => $o->{cert},
		SSL_key_file => $o->{key}, SSL_verify_mode => 0);
	if ($o->{ca}) {
		$a{SSL_ca_file} = $o->{ca};
		$a{SSL_verify_mode} = IO::Socket::SSL::SSL_VERIFY_PEER()
			| IO::Socket::SSL::SSL_VERIFY_FAIL_IF_NO_PEER_CERT();
	}
	$a{SSL_version} = $o->{version} if $o->{version};
	return IO::Socket::SSL::SSL_Context->new(%a)
		|| die "backend $self->{name}: TLS: $IO::Socket::SSL::SSL_ERROR";
}

# The TLS handshake of a new connection (logged); false if it failed.
sub _tls_accept {
	my ($self, $sock, $cid) = @_;
	if (my $how = $self->{tls_break}) {
		my $buf = '';
		sysread($sock, $buf, 5); # the start of a ClientHello
		_log_line($self, 'T', $cid, sprintf('%.6f', time()), '', '', 0,
			'', "broken: $how");
		# hang: say nothing more until the proxy gives up and closes
		1 while $how eq 'hang' && sysread($sock, $buf, 4096);
		setsockopt($sock, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0))
			if $how eq 'reset';
		_exit(0);
	}
	my $ok = IO::Socket::SSL->start_SSL($sock, SSL_server => 1,
		SSL_reuse_ctx => $self->{ssl_ctx}, Timeout => 10);
	if (!$ok) {
		_log_line($self, 'T', $cid, sprintf('%.6f', time()), '', '', 0,
			'', $IO::Socket::SSL::SSL_ERROR || "$!");
		return 0;
	}
	my $subject = $sock->peer_certificate('subject') // '';
	_log_line($self, 'T', $cid, sprintf('%.6f', time()),
		$sock->get_servername // '', $subject,
		$sock->get_session_reused ? 1 : 0, $sock->get_sslversion // '', '');
	return 1;
}

# Serve the requests of one connection until it closes.
sub _connection {
	my ($self, $sock, $cid) = @_;
	setsockopt($sock, IPPROTO_TCP, TCP_NODELAY, 1) unless defined $self->{unix};
	return if $self->{tls} && !_tls_accept($self, $sock, $cid);
	my $c = { sock => $sock, cid => $cid, seq => 0, buf => '' };
	while (1) {
		my $req = _read_head($self, $c) or return;
		$c->{seq}++;
		my $keep = _handle($self, $c, $req);
		last unless $keep;
	}
	_linger($c) if $c->{linger};
}

# Close after an answer while the client may still be sending: stop
# writing, read and drop what comes for a while, so the close does not
# turn into a reset that destroys the answer before it is read.
sub _linger {
	my ($c) = @_;
	shutdown($c->{sock}, 1);
	my $end = time() + 2;
	while (time() < $end) {
		$c->{buf} = '';
		_fill($c, 65536, $end - time()) or last;
	}
}

# Read more bytes into the connection's buffer: at most $max, waiting at
# most $timeout seconds (undef: forever). Returns the count, 0 at EOF,
# undef on timeout or error.
sub _fill {
	my ($c, $max, $timeout) = @_;
	# bytes OpenSSL already holds are not seen by select
	if (defined $timeout && !($c->{sock}->can('pending')
		&& $c->{sock}->pending)) {
		my $sel = IO::Select->new($c->{sock});
		return undef unless $sel->can_read($timeout);
	}
	my $n;
	do {
		$n = sysread($c->{sock}, $c->{buf}, $max // 65536,
			length $c->{buf});
	} while (!defined $n && $! == EINTR);
	return $n;
}

sub _write {
	my ($c, $bytes) = @_;
	my $off = 0;
	while ($off < length $bytes) {
		my $n = syswrite($c->{sock}, $bytes, length($bytes) - $off, $off);
		if (!defined $n) {
			next if $! == EINTR || $! == EAGAIN;
			_exit(0);  # the peer left: nothing more to do here
		}
		$off += $n;
	}
}

# Read one request head. Returns the request (method, target, version,
# raw_headers, headers, path, query) or undef when the connection ends.
sub _read_head {
	my ($self, $c) = @_;
	my $idle = $self->{idle_close_ms};
	while ($c->{buf} !~ /\r?\n\r?\n/) {
		# blank lines before a request are allowed (RFC 9112 2.2)
		$c->{buf} =~ s/^(?:\r?\n)+//;
		my $timeout = length $c->{buf} || !defined $idle ? undef
			: $idle / 1000;
		my $n = _fill($c, 65536, $timeout);
		return undef unless $n;
		if (length $c->{buf} > (1 << 20)) {
			_write($c, "HTTP/1.1 431 Too Large\r\nConnection: close\r\n"
				. "Content-Length: 0\r\n\r\n");
			return undef;
		}
	}
	$c->{buf} =~ s/^(?:\r?\n)+//;
	$c->{buf} =~ s/^(.*?)\r?\n\r?\n//s;
	my $head = $1;
	$c->{raw_head} = "$head\r\n\r\n";
	my ($line, @raw) = split /\n/, $head, -1;
	s/\r$// for $line, @raw;
	my $req = { raw_headers => \@raw,
		headers => [ map { _split_header($_) } @raw ] };
	if ($line =~ m{^(\S+) (\S+) (HTTP/\d\.\d)$}) {
		@$req{qw(method target version)} = ($1, $2, $3);
	} else {
		@$req{qw(method target version)} = ('-', $line, '-');
		$req->{error} = 'bad request line';
	}
	my ($path, $q) = split /\?/, $req->{target}, 2;
	$req->{path} = $path;
	$req->{qlist} = [ _parse_query($q) ];
	$req->{query} = { map { @$_[0, 1] } @{ $req->{qlist} } };
	return $req;
}

# The values of a request header (case-insensitive name), joined ", ".
sub _hdr {
	my ($req, $name) = @_;
	my @v = map { $_->[1] } grep { defined $_->[1] && lc $_->[0] eq $name }
		@{ $req->{headers} };
	return @v ? join(', ', @v) : undef;
}

# Whether the connection may stay open after this answer, as far as the
# request and the backend's options go.
sub _want_keepalive {
	my ($self, $c, $req) = @_;
	my $conn = lc(_hdr($req, 'connection') // '');
	return 0 if $self->{close_after} || $req->{force_close};
	return 0 if $self->{max_requests_per_conn}
		&& $c->{seq} >= $self->{max_requests_per_conn};
	return 0 if $conn =~ /\bclose\b/;
	return 0 if lc($req->{query}{connection} // '') eq 'close';
	return 0 if $req->{version} ne 'HTTP/1.1' && $conn !~ /\bkeep-alive\b/;
	return 0 if $self->{http10} && $conn !~ /\bkeep-alive\b/;
	return 1;
}

# The command of a request: the first path segment that names one, and
# what follows it.
my %COMMANDS = map { $_ => 1 } qw(status echo sha1 reset reset_mid die
	garbage bad ws health set_health headers);

sub _command {
	my ($path) = @_;
	my @seg = split m{/}, $path // '';
	for my $i (0 .. $#seg) {
		return ($seg[$i], @seg[$i + 1 .. $#seg]) if $COMMANDS{ $seg[$i] };
	}
	return ('default');
}

# Answer one request; returns true to keep the connection.
sub _handle {
	my ($self, $c, $req) = @_;
	if ($req->{error}) {
		_log_request($self, $c, $req, _empty_body());
		_write($c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
			. "Content-Length: 0\r\n\r\n");
		return 0;
	}
	my ($cmd, @arg) = _command($req->{path});
	return _ws($self, $c, $req) if $cmd eq 'ws';
	return _echo($self, $c, $req) if $cmd eq 'echo' && $req->{method} ne 'HEAD';
	my $early = $req->{query}{early};
	my $body = $early ? { %{ _empty_body() }, length => '-', sha1 => '-' }
		: _read_body($self, $c, $req, undef);
	_log_request($self, $c, $req, $body);
	return 0 if $body->{error};
	_delay($req->{query}{delay});
	# an answer before the body is read ends the connection, gently
	$c->{linger} = $req->{force_close} = 1 if $early;
	if ($cmd eq 'reset') {
		_reset($c);
	} elsif ($cmd eq 'die') {
		kill 'TERM', -getpgrp();
		_exit(0);
	} elsif ($cmd eq 'garbage') {
		_write($c, "\0\x01\xff\xfeGARBAGE, not HTTP at all\r\n\r\n");
		return 0;
	} elsif ($cmd eq 'bad') {
		_write($c, $BAD{ $arg[0] // '' }
			// "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
		return 0;
	} elsif ($cmd eq 'reset_mid') {
		_reset_mid($self, $c, $req);
	}
	return _answer($self, $c, $req, _plan($self, $req, $cmd, \@arg, $body));
}

# What a "normal" command answers: status, extra headers, body.
sub _plan {
	my ($self, $req, $cmd, $arg, $body) = @_;
	my $q = $req->{query};
	my %p = (status => 200, headers => []);
	if ($cmd eq 'status') {
		my $s = $arg->[0] // '';
		$p{status} = $s =~ /^\d{3}$/ ? $s : 400;
	} elsif ($cmd eq 'sha1') {
		$p{body} = "$body->{sha1} $body->{length}\n";
		push @{ $p{headers} }, "X-Body-Sha1: $body->{sha1}",
			"X-Body-Length: $body->{length}";
	} elsif ($cmd eq 'health') {
		my $ok = (_slurp($self->{health}) // '1') !~ /^0/;
		@p{qw(status body)} = $ok ? (200, "ok\n") : (503, "fail\n");
	} elsif ($cmd eq 'set_health') {
		$self->set_health($q->{v} // 1);
		$p{body} = "health " . (($q->{v} // 1) ? 1 : 0) . "\n";
	}
	if (!defined $p{body} && defined $q->{size} && $q->{size} =~ /^\d+$/) {
		$p{size} = $q->{size};
	}
	$p{body} //= "$self->{name}\n" unless defined $p{size};
	return \%p;
}

sub _delay {
	my ($ms) = @_;
	sleep($ms / 1000) if defined $ms && $ms =~ /^\d+(?:\.\d+)?$/ && $ms > 0;
}

sub _reset {
	my ($c) = @_;
	setsockopt($c->{sock}, SOL_SOCKET, SO_LINGER, pack('ii', 1, 0));
	# on TLS no close_notify first: the process's exit closes the socket
	close $c->{sock} unless $c->{sock}->isa('IO::Socket::SSL');
	_exit(0);
}

sub _reset_mid {
	my ($self, $c, $req) = @_;
	my $q = $req->{query};
	my $size = ($q->{size} // '') =~ /^\d+$/ ? $q->{size} : 65536;
	my $part = ($q->{part} // '') =~ /^\d+$/ ? $q->{part} : int($size / 2);
	$part = $size if $part > $size;
	my $head = "HTTP/1.1 200 OK\r\nX-Backend: $self->{name}\r\n"
		. "Content-Length: $size\r\n\r\n";
	_write($c, $head);
	my $next = pattern_stream($part, 65536);
	while (defined(my $p = $next->())) {
		_write($c, $p);
	}
	_reset($c);
}

sub _empty_body {
	return { length => 0, sha1 => Digest::SHA::sha1_hex(''), data => '',
		trailers => [] };
}

# How the request body is framed: ('chunked'), ('length', N), ('none') or
# ('bad', why).
sub _body_framing {
	my ($req) = @_;
	my $te = _hdr($req, 'transfer-encoding');
	if (defined $te) {
		return ('chunked') if $te =~ /\bchunked\s*$/i;
		return ('bad', "transfer-encoding $te");
	}
	my $cl = _hdr($req, 'content-length');
	return ('none') unless defined $cl;
	return ('bad', "content-length $cl") unless $cl =~ /^\s*(\d+)\s*$/;
	return ('length', $1);
}

# Read the whole request body, calling $sink->($piece) for each piece
# (undef: keep only the first 4 KB). Returns { length, sha1, data,
# trailers, error }. "Expect: 100-continue" gets a 100 first.
sub _read_body {
	my ($self, $c, $req, $sink) = @_;
	my $b = _empty_body();
	my $sha = Digest::SHA->new(1);
	my $q = $req->{query};
	my $rd = $q->{read_delay};
	my $rpiece = ($q->{read_piece} // '') =~ /^\d+$/ && $q->{read_piece} > 0
		? $q->{read_piece} : defined $rd ? 16384 : 65536;
	my ($kind, $n) = _body_framing($req);
	$c->{body_pieces} = 0;
	my $take = sub {
		my ($p) = @_;
		$b->{length} += length $p;
		$sha->add($p);
		$b->{data} .= $p if length($b->{data}) <= 4096;
		$sink->($p) if $sink;
	};
	if ($kind ne 'none' && (_hdr($req, 'expect') // '') =~ /100-continue/i) {
		_write($c, "HTTP/1.1 100 Continue\r\n\r\n");
	}
	if ($kind eq 'length') {
		_read_length($c, $n, $rpiece, $rd, $take) or $b->{error} = 'eof';
	} elsif ($kind eq 'chunked') {
		my $err = _read_chunked($c, $rpiece, $rd, $take, $b->{trailers});
		$b->{error} = $err if $err;
	} elsif ($kind eq 'bad') {
		$b->{error} = $n;
	}
	$b->{sha1} = $sha->hexdigest;
	if ($b->{error}) {
		$req->{error} = "body: $b->{error}";
		_write($c, "HTTP/1.1 400 Bad Request\r\nConnection: close\r\n"
			. "Content-Length: 0\r\n\r\n") if $b->{error} ne 'eof';
	}
	return $b;
}

# Take n bytes of body from the buffer and the socket, pieces of at most
# $piece bytes with $rd ms between reads. False on EOF.
sub _read_length {
	my ($c, $n, $piece, $rd, $take) = @_;
	while ($n > 0) {
		# a slow reader pauses before every piece, buffered or not
		_delay($rd) if $rd && $c->{body_pieces}++;
		if (!length $c->{buf}) {
			my $want = $n < $piece ? $n : $piece;
			_fill($c, $want) or return 0;
		}
		my $len = length $c->{buf};
		$len = $n if $len > $n;
		$len = $piece if $len > $piece;
		$take->(substr($c->{buf}, 0, $len, ''));
		$n -= $len;
	}
	return 1;
}

# One CRLF-ended line from the connection (CRLF removed), or undef.
sub _read_line {
	my ($c) = @_;
	while ($c->{buf} !~ /\n/) {
		return undef if length $c->{buf} > 65536;
		_fill($c) or return undef;
	}
	$c->{buf} =~ s/^(.*?)\r?\n//s;
	return $1;
}

sub _read_chunked {
	my ($c, $piece, $rd, $take, $trailers) = @_;
	while (1) {
		my $line = _read_line($c) // return 'eof';
		return "chunk size '$line'"
			unless $line =~ /^([0-9a-fA-F]{1,15})[ \t]*(?:;.*)?$/;
		my $size = hex $1;
		last if $size == 0;
		_read_length($c, $size, $piece, $rd, $take) or return 'eof';
		my $end = _read_line($c) // return 'eof';
		return 'no CRLF after chunk data' if length $end;
	}
	while (1) {
		my $line = _read_line($c) // return 'eof';
		last unless length $line;
		push @$trailers, $line;
	}
	return undef;
}

# How an answer is delimited: 'length', 'chunked' or 'close'.
sub _framing {
	my ($self, $req, $q, $known) = @_;
	my $can_chunk = !$self->{http10} && $req->{version} eq 'HTTP/1.1';
	return 'close' if $q->{close};
	return $can_chunk ? 'chunked' : 'close' if $q->{chunked} || !$known;
	return 'length';
}

# The head of an answer: status line, the backend's headers, the
# ?h= headers, framing and Connection. Returns (head, keep-alive).
sub _head {
	my ($self, $c, $req, $status, $extra, $framing, $length) = @_;
	my $q = $req->{query};
	my $keep = _want_keepalive($self, $c, $req) && $framing ne 'close';
	my @h = ("X-Backend: $self->{name}");
	push @h, 'Server: portier-test-backend', "X-Conn: $c->{cid}",
		"X-Seq: $c->{seq}" unless $self->{quiet_head};
	push @h, @$extra;
	for (@{ $req->{qlist} }) {
		next unless $_->[0] eq 'h' && $_->[1] =~ /^([^:]+):\s*(.*)$/;
		push @h, "$1: $2";
		$keep = 0 if lc $1 eq 'connection' && $2 =~ /close/i;
	}
	my $nobody = $status < 200 || $status == 204 || $status == 304;
	if ($nobody) {
		# no framing header
	} elsif ($framing eq 'length') {
		push @h, "Content-Length: $length";
	} elsif ($framing eq 'chunked') {
		push @h, 'Transfer-Encoding: chunked';
		push @h, 'Trailer: X-Trailer, X-Body-Length' if $q->{trailers};
	}
	my $v = $self->{http10} ? 'HTTP/1.0' : 'HTTP/1.1';
	if (!$keep) {
		push @h, 'Connection: close';
	} elsif ($v eq 'HTTP/1.0' || $req->{version} eq 'HTTP/1.0') {
		push @h, 'Connection: keep-alive';
	}
	my $reason = $REASON{$status} // 'Status';
	return (join("\r\n", "$v $status $reason", @h) . "\r\n\r\n", $keep);
}

# Send a planned answer, streaming a ?size body piece by piece.
sub _answer {
	my ($self, $c, $req, $p) = @_;
	my $q = $req->{query};
	my $piece = ($q->{piece} // '') =~ /^\d+$/ && $q->{piece} > 0
		? $q->{piece} : 65536;
	my $length = $p->{size} // length $p->{body};
	my $framing = _framing($self, $req, $q, 1);
	my @extra = @{ $p->{headers} };
	push @extra, 'Content-Type: text/plain' unless defined $p->{size};
	push @extra, 'Content-Type: application/octet-stream' if defined $p->{size};
	my ($head, $keep) = _head($self, $c, $req, $p->{status}, \@extra,
		$framing, $length);
	my $st = $p->{status};
	if ($req->{method} eq 'HEAD' || $st < 200 || $st == 204 || $st == 304) {
		_write($c, $head);
		return $keep;
	}
	my $next = defined $p->{size} ? pattern_stream($p->{size}, $piece)
		: _string_pieces($p->{body}, $piece);
	my $out = $head;
	my $first = 1;
	while (defined(my $part = $next->())) {
		if (!$first && $q->{body_delay}) {
			_write($c, $out);
			$out = '';
			_delay($q->{body_delay});
		}
		$first = 0;
		$out .= $framing eq 'chunked'
			? sprintf("%x\r\n", length $part) . $part . "\r\n" : $part;
		if (length $out >= 65536) {
			_write($c, $out);
			$out = '';
		}
	}
	$out .= _last_chunk($q, $length) if $framing eq 'chunked';
	_write($c, $out) if length $out;
	return $keep && $framing ne 'close';
}

sub _last_chunk {
	my ($q, $length) = @_;
	return "0\r\n\r\n" unless $q->{trailers};
	return "0\r\nX-Trailer: end\r\nX-Body-Length: $length\r\n\r\n";
}

# A closure returning pieces of a string.
sub _string_pieces {
	my ($s, $piece) = @_;
	my $off = 0;
	return sub {
		return undef if $off >= length $s;
		my $p = substr($s, $off, $piece);
		$off += length $p;
		return $p;
	};
}

# /echo: the request head as received, then the body, streamed back as
# it is read. The log line is written once the body is read, before the
# last bytes of the answer go out.
sub _echo {
	my ($self, $c, $req) = @_;
	my $q = $req->{query};
	my $prefix = $q->{body_only} ? '' : $c->{raw_head};
	my ($kind, $n) = _body_framing($req);
	my $len = length($prefix) + ($kind eq 'length' ? $n : 0);
	my $framing = _framing($self, $req, $q, $kind ne 'chunked');
	my ($head, $keep) = _head($self, $c, $req, 200,
		['Content-Type: application/octet-stream',
		 "X-Echo-Method: $req->{method}"], $framing, $len);
	my $enc = sub {
		my ($p) = @_;
		return '' unless length $p;
		return $framing eq 'chunked'
			? sprintf("%x\r\n", length $p) . $p . "\r\n" : $p;
	};
	_delay($q->{delay});
	# the head goes out with the first piece of body (after any 100
	# Continue), and one piece is held back until the log line is written
	my $held = $head . $enc->($prefix);
	my $body = _read_body($self, $c, $req, sub {
		_write($c, $held) if length $held;
		$held = $enc->($_[0]);
	});
	_log_request($self, $c, $req, $body);
	return 0 if $body->{error};
	$held .= "0\r\n\r\n" if $framing eq 'chunked';
	_write($c, $held);
	return $keep && $framing ne 'close';
}

# ---- WebSocket (RFC 6455), server side --------------------------------------

sub _ws {
	my ($self, $c, $req) = @_;
	my $key = _hdr($req, 'sec-websocket-key');
	my $up = lc(_hdr($req, 'upgrade') // '');
	my $body = _read_body($self, $c, $req, undef);
	_log_request($self, $c, $req, $body);
	if (!defined $key || $up ne 'websocket'
		|| (_hdr($req, 'sec-websocket-version') // '') ne '13') {
		_write($c, "HTTP/1.1 400 Bad Request\r\nX-Backend: $self->{name}\r\n"
			. "Connection: close\r\nContent-Length: 22\r\n\r\n"
			. "not a websocket upgrade");
		return 0;
	}
	my $accept = ws_accept($key);
	my $proto = _hdr($req, 'sec-websocket-protocol');
	$proto =~ s/,.*// if defined $proto;
	_write($c, "HTTP/1.1 101 Switching Protocols\r\n"
		. "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		. "Sec-WebSocket-Accept: $accept\r\nX-Backend: $self->{name}\r\n"
		. (defined $proto ? "Sec-WebSocket-Protocol: $proto\r\n" : '')
		. "\r\n");
	while (1) {
		my $f = ws_read_frame($c) or return 0;
		my $op = $f->{opcode};
		if ($op == 8) {
			_write($c, ws_frame(8, $f->{payload}, 1, 0));
			return 0;
		}
		if ($op == 9) {
			_write($c, ws_frame(10, $f->{payload}, 1, 0));
		} elsif ($op <= 2) {
			_write($c, ws_frame($op, $f->{payload}, $f->{fin}, 0));
		}
	}
}

# Sec-WebSocket-Accept for a Sec-WebSocket-Key.
sub ws_accept {
	my ($key) = @_;
	return encode_base64(Digest::SHA::sha1($key . $WS_GUID), '');
}

# One frame's bytes: opcode, payload, fin, masked (a client's frames are).
sub ws_frame {
	my ($op, $payload, $fin, $mask) = @_;
	my $len = length $payload;
	my $out = chr(($fin // 1 ? 0x80 : 0) | $op);
	my $m = $mask ? 0x80 : 0;
	if ($len < 126) {
		$out .= chr($m | $len);
	} elsif ($len < 65536) {
		$out .= chr($m | 126) . pack('n', $len);
	} else {
		$out .= chr($m | 127) . pack('Q>', $len);
	}
	return $out . $payload unless $mask;
	my $key = pack('N', int(rand(4294967296)));
	return $out . $key . _ws_mask($payload, $key);
}

sub _ws_mask {
	my ($p, $key) = @_;
	return $p ^ substr($key x (int(length($p) / 4) + 1), 0, length $p);
}

# Read one frame from a connection hash ({ sock, buf }). Returns
# { opcode, fin, payload, masked } or undef at EOF or after $timeout.
sub ws_read_frame {
	my ($c, $timeout) = @_;
	my $need = sub {
		my ($n) = @_;
		while (length $c->{buf} < $n) {
			_fill($c, 65536, $timeout) or return 0;
		}
		return 1;
	};
	$need->(2) or return undef;
	my ($b0, $b1) = unpack('CC', $c->{buf});
	my $len = $b1 & 0x7f;
	my $hl = 2;
	if ($len == 126) {
		$need->(4) or return undef;
		$len = unpack('n', substr($c->{buf}, 2, 2));
		$hl = 4;
	} elsif ($len == 127) {
		$need->(10) or return undef;
		$len = unpack('Q>', substr($c->{buf}, 2, 8));
		$hl = 10;
	}
	my $masked = $b1 & 0x80;
	$hl += 4 if $masked;
	$need->($hl + $len) or return undef;
	my $key = $masked ? substr($c->{buf}, $hl - 4, 4) : undef;
	substr($c->{buf}, 0, $hl, '');
	my $payload = substr($c->{buf}, 0, $len, '');
	$payload = _ws_mask($payload, $key) if $masked;
	return { opcode => $b0 & 0x0f, fin => ($b0 & 0x80) ? 1 : 0,
		payload => $payload, masked => $masked ? 1 : 0 };
}

# ---- WebSocket client, for tests (directly or through the proxy) --------------

# my $ws = PortierBackend::ws_client(port => P, path => '/ws',
#     host => '127.0.0.1', headers => ['X-A: 1'], timeout => 5);
# or ws_client(sock => $connected_socket, ...). Sends the upgrade
# request and reads the answer head: $ws->{status}, $ws->{head} (raw),
# $ws->{headers} ({ lc name => value }), $ws->{accept_ok} (the accept
# value is right). Undef if it cannot connect.
sub ws_client {
	my (%o) = @_;
	my $s = $o{sock} // IO::Socket::INET->new(PeerAddr =>
		$o{host} // '127.0.0.1', PeerPort => $o{port}, Proto => 'tcp',
		Timeout => $o{timeout} // 5) or return undef;
	my $key = encode_base64(join('', map { chr int rand 256 } 1 .. 16), '');
	my $req = "GET " . ($o{path} // '/ws') . " HTTP/1.1\r\n"
		. "Host: " . ($o{host_header} // 'localhost') . "\r\n"
		. "Upgrade: websocket\r\nConnection: Upgrade\r\n"
		. "Sec-WebSocket-Key: $key\r\nSec-WebSocket-Version: 13\r\n"
		. join('', map { "$_\r\n" } @{ $o{headers} // [] }) . "\r\n";
	my $ws = bless { sock => $s, buf => '', timeout => $o{timeout} // 5 },
		'PortierBackend::WS';
	_write_client($s, $req) or return $ws;
	my $end = time() + $ws->{timeout};
	while ($ws->{buf} !~ /\r\n\r\n/) {
		my $left = $end - time();
		last if $left <= 0 || !_fill($ws, 65536, $left);
	}
	return $ws unless $ws->{buf} =~ s/^(.*?\r\n)\r\n//s;
	$ws->{head} = $1;
	($ws->{status}) = $ws->{head} =~ m{^HTTP/1\.[01] (\d{3})};
	for (split /\r\n/, $ws->{head}) {
		$ws->{headers}{ lc $1 } = $2 if /^([^:]+):\s*(.*?)\s*$/;
	}
	$ws->{accept_ok} = ($ws->{headers}{'sec-websocket-accept'} // '')
		eq ws_accept($key) ? 1 : 0;
	return $ws;
}

sub _write_client {
	my ($s, $bytes) = @_;
	my $off = 0;
	while ($off < length $bytes) {
		my $n = syswrite($s, $bytes, length($bytes) - $off, $off);
		if (!defined $n) {
			next if $! == EINTR;
			return 0;
		}
		$off += $n;
	}
	return 1;
}

package PortierBackend::WS;

# A client's end of a WebSocket: frames it sends are masked.

sub sock { $_[0]{sock} }

# Send one frame: payload, opcode (1 text, 2 binary, 0 continuation,
# 8 close, 9 ping), fin (default 1), mask (default 1). True if written.
sub send {
	my ($self, $payload, %o) = @_;
	my $f = PortierBackend::ws_frame($o{opcode} // 1, $payload,
		$o{fin} // 1, $o{mask} // 1);
	return PortierBackend::_write_client($self->{sock}, $f);
}

sub send_text { $_[0]->send($_[1], opcode => 1) }
sub send_binary { $_[0]->send($_[1], opcode => 2) }
sub ping { $_[0]->send($_[1] // '', opcode => 9) }

# The next frame ({ opcode, fin, payload, masked }) or undef on EOF or
# after the timeout (seconds, default the client's).
sub recv {
	my ($self, $timeout) = @_;
	return PortierBackend::ws_read_frame($self, $timeout // $self->{timeout});
}

# Send a close frame (code, reason) and return the close frame that
# answers it (skipping data frames still in flight), or undef.
sub close {
	my ($self, $code, $reason) = @_;
	$self->send(pack('n', $code // 1000) . ($reason // ''), opcode => 8)
		or return undef;
	while (my $f = $self->recv) {
		return $f if $f->{opcode} == 8;
	}
	return undef;
}

1;
