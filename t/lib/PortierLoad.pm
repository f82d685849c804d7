package PortierLoad;

# Continuous load for the tests of reloads and upgrades: forked Perl
# clients that each loop over GET requests until told to stop, and judge
# every request the way a careful HTTP client would.
#
#   my $load = PortierLoad->start(dir => $t->dir, port => $t->port(0),
#       path => '/', body => qr/^(old|new)$/,
#       keepalive => 1, close => 1,          # clients of each kind
#       slow => 1, slow_path => '/big', slow_body => $content);
#   $load->wait_requests(10);
#   ... signals ...
#   my $r = $load->stop;  # { ok, retries, nfail, failures => [..], bodies }
#
# "keepalive" clients reuse their connection as long as the server lets
# them, "close" clients send "Connection: close"; "slow" clients download
# slow_path (compared byte for byte with slow_body) through a small
# receive buffer at a bounded pace, so that a download is nearly always in
# flight when a signal comes: a worker that leaves before finishing it is
# caught.
#
# A request fails when the client does not get a complete, correct
# response: connection refused or timed out, a reset or an EOF before the
# response is complete, a wrong status or body, no response in time. One
# case is not a failure (RFC 9112, section 9.3.1): a request written on a
# reused keep-alive connection that the server closed as idle at that
# very moment, with no byte of response received; the client retries it
# once on a new connection (counted in "retries"), where it must succeed.
#
# Clients stop when a stop file appears (no signals: a signal could cut a
# request short and turn it into a false failure).

use strict;
use warnings;

use Digest::MD5 qw(md5_hex);
use Errno qw(EINPROGRESS EINTR ETIMEDOUT);
use IO::Handle;
use IO::Select;
use POSIX qw(:sys_wait_h _exit);
use Socket qw(:all);
use Time::HiRes qw(time sleep);

our $REQUEST_TIMEOUT = 10;

sub start {
	my ($class, %o) = @_;
	my $self = bless {
		dir => $o{dir} // die('dir'),
		port => $o{port} // die('port'),
		pace => $o{pace} // 0.003,
		kids => [],
	}, $class;
	my $fast = { path => $o{path} // '/', body => $o{body} };
	my $slow = { path => $o{slow_path}, keepalive => 1, slow => 1,
		body => $o{slow_body},
		md5 => defined $o{slow_body} ? md5_hex($o{slow_body}) : undef };
	my @clients = (
		(map { { %$fast, keepalive => 1 } } 1 .. ($o{keepalive} // 2)),
		(map { { %$fast, keepalive => 0 } } 1 .. ($o{close} // 2)),
		(map { { %$slow } } 1 .. ($o{slow} // 0)),
	);
	$self->{stop} = "$self->{dir}/load-stop-$$-" . int(rand(1e9));
	unlink $self->{stop};
	for my $i (0 .. $#clients) {
		my $res = "$self->{stop}.res$i";
		unlink $res, "$res.count";
		my $pid = fork // die "fork: $!";
		if ($pid == 0) {
			my $r = eval { $self->client($clients[$i], $res) }
				// { ok => 0, retries => 0, bodies => {},
				     nfail => 1, failures => ["client died: $@"] };
			write_result($res, $r);
			_exit(0);
		}
		push @{ $self->{kids} }, [$pid, $res];
	}
	return $self;
}

# Wait until every client made at least n requests; false on timeout.
sub wait_requests {
	my ($self, $n, $timeout) = @_;
	my $end = time() + ($timeout // 10);
	while (time() < $end) {
		my $min;
		for my $k (@{ $self->{kids} }) {
			my $c = -s "$k->[1].count" // 0;
			$min = $c if !defined $min || $c < $min;
		}
		return 1 if ($min // 0) >= $n;
		sleep(0.02);
	}
	return 0;
}

# Stop the clients, wait for them (bounded) and add up their results.
sub stop {
	my ($self) = @_;
	open my $fh, '>', $self->{stop} or die "$self->{stop}: $!";
	close $fh;
	my %sum = (ok => 0, retries => 0, nfail => 0, failures => [],
		bodies => {});
	my $end = time() + $REQUEST_TIMEOUT + 5;
	for my $k (@{ $self->{kids} }) {
		my ($pid, $res) = @$k;
		while (waitpid($pid, WNOHANG) == 0) {
			if (time() > $end) {
				kill 'KILL', $pid;
				waitpid($pid, 0);
				push @{ $sum{failures} },
					"client $pid did not stop";
				$sum{nfail}++;
				last;
			}
			sleep(0.02);
		}
		my $r = read_result($res);
		unless ($r) {
			push @{ $sum{failures} }, "client $pid left no result";
			$sum{nfail}++;
			next;
		}
		$sum{$_} += $r->{$_} // 0 for qw(ok retries nfail);
		push @{ $sum{failures} }, @{ $r->{failures} };
		$sum{bodies}{$_} += $r->{bodies}{$_} for keys %{ $r->{bodies} };
		unlink $res, "$res.count";
	}
	unlink $self->{stop};
	$self->{kids} = [];
	return \%sum;
}

sub DESTROY {
	my ($self) = @_;
	local $?;
	$self->stop if @{ $self->{kids} // [] };
}

# ---- a client ----------------------------------------------------------

sub client {
	my ($self, $c, $res) = @_;
	my %r = (ok => 0, retries => 0, nfail => 0, failures => [],
		bodies => {});
	local $SIG{PIPE} = 'IGNORE';
	# one byte per request done: wait_requests() polls its size
	open my $progress, '>', "$res.count" or die "$res.count: $!";
	$progress->autoflush(1);
	my ($sock, $reused);
	until (-e $self->{stop}) {
		my $retry = 0;
	REQUEST: {
			unless ($sock) {
				$sock = $self->connect_new($c);
				unless ($sock) {
					fail(\%r, "connect: $!");
					last REQUEST;
				}
				$reused = 0;
			}
			my $out = $self->exchange($sock, $c);
			if ($out->{error}) {
				close $sock;
				$sock = undef;
				if ($reused && $out->{got} == 0 && !$retry) {
					# closed as idle as we wrote: retry once
					$r{retries}++;
					$retry = 1;
					redo REQUEST;
				}
				fail(\%r, sprintf("GET %s: %s after %d bytes on "
					. "a %s connection%s", $c->{path},
					$out->{error}, $out->{got},
					$reused ? 'reused' : 'new',
					$retry ? ' (retry)' : ''));
				last REQUEST;
			}
			my $err = check($c, $out);
			if ($err) {
				fail(\%r, "GET $c->{path}: $err");
				close $sock;
				$sock = undef;
				last REQUEST;
			}
			$r{ok}++;
			$r{bodies}{ $c->{slow} ? '(download)' : $out->{body} }++;
			if (!$c->{keepalive} || $out->{close}) {
				close $sock;
				$sock = undef;
			} else {
				$reused = 1;
			}
		}
		print $progress '.';
		sleep($self->{pace}) if $self->{pace};
	}
	close $sock if $sock;
	close $progress;
	return \%r;
}

# A new connection, or undef with $! set; a connect that takes more than
# 5 s (a full backlog drops the SYN) is a failure too.
sub connect_new {
	my ($self, $c) = @_;
	socket(my $s, PF_INET, SOCK_STREAM, 0) or return undef;
	# a small receive buffer: the server must wait for a slow client
	setsockopt($s, SOL_SOCKET, SO_RCVBUF, 16384) if $c->{slow};
	$s->blocking(0);
	unless (connect($s, pack_sockaddr_in($self->{port},
			inet_aton('127.0.0.1')))) {
		return undef unless $! == EINPROGRESS;
		unless (IO::Select->new($s)->can_write(5)) {
			$! = ETIMEDOUT;
			return undef;
		}
		my $err = unpack('i', getsockopt($s, SOL_SOCKET, SO_ERROR));
		if ($err) {
			$! = $err;
			return undef;
		}
	}
	$s->blocking(1);
	return $s;
}

sub fail {
	my ($r, $msg) = @_;
	push @{ $r->{failures} }, $msg if @{ $r->{failures} } < 20;
	$r->{nfail}++;
}

# One request and its response. Returns { status, head, body, close, got }
# or { error, got }.
sub exchange {
	my ($self, $sock, $c) = @_;
	my $req = "GET $c->{path} HTTP/1.1\r\nHost: localhost\r\n"
		. ($c->{keepalive} ? '' : "Connection: close\r\n") . "\r\n";
	my $w = syswrite($sock, $req);
	return { error => "write: $!", got => 0 }
		unless defined $w && $w == length $req;
	my $buf = '';
	my $sel = IO::Select->new($sock);
	my $end = time() + $REQUEST_TIMEOUT;
	while (!response_length($buf)) {
		my $left = $end - time();
		return { error => 'timeout', got => length $buf } if $left <= 0;
		next unless $sel->can_read($left);
		my $n = sysread($sock, $buf, $c->{slow} ? 16384 : 65536,
			length $buf);
		if (!defined $n) {
			next if $! == EINTR;
			return { error => "read: $!", got => length $buf };
		}
		return { error => 'EOF', got => length $buf } if $n == 0;
		sleep(0.002) if $c->{slow}; # pacing: about 8 MB/s at most
	}
	my $len = response_length($buf);
	my $hend = index($buf, "\r\n\r\n");
	my $head = substr($buf, 0, $hend);
	my ($status) = $head =~ m{^HTTP/1\.1 (\d{3}) };
	return { status => $status // 0, head => $head,
		body => substr($buf, $hend + 4, $len - $hend - 4),
		extra => length($buf) - $len, got => length $buf,
		close => scalar($head =~ /^connection:\s*close/mi) };
}

sub check {
	my ($c, $out) = @_;
	return "status $out->{status}" unless $out->{status} == 200;
	return "$out->{extra} bytes after the response" if $out->{extra};
	if (defined $c->{md5}) {
		return length($out->{body}) . " bytes differ from the file"
			unless md5_hex($out->{body}) eq $c->{md5};
		return undef;
	}
	my $want = $c->{body};
	return undef unless defined $want;
	my $ok = ref $want ? $out->{body} =~ $want : $out->{body} eq $want;
	return $ok ? undef : "unexpected body \"" . substr($out->{body}, 0, 60)
		. '"';
}

# Length of the complete response at the start of buf (Content-Length
# framed, as every response of these tests is), or 0.
sub response_length {
	my ($buf) = @_;
	my $end = index($buf, "\r\n\r\n");
	return 0 if $end < 0;
	my ($cl) = substr($buf, 0, $end) =~ /^content-length:\s*(\d+)/mi;
	return 0 unless defined $cl;
	return length($buf) >= $end + 4 + $cl ? $end + 4 + $cl : 0;
}

sub write_result {
	my ($file, $r) = @_;
	open my $fh, '>', "$file.tmp" or return;
	print $fh "ok\t$r->{ok}\nretries\t$r->{retries}\n";
	print $fh "nfail\t", ($r->{nfail} // scalar @{ $r->{failures} }), "\n";
	for my $f (@{ $r->{failures} }) {
		(my $v = $f) =~ s/[\t\n]/ /g;
		print $fh "failure\t$v\n";
	}
	for my $b (keys %{ $r->{bodies} }) {
		(my $v = $b) =~ s/[\t\n]/ /g;
		print $fh "body\t$r->{bodies}{$b}\t$v\n";
	}
	close $fh;
	rename "$file.tmp", $file;
}

sub read_result {
	my ($file) = @_;
	open my $fh, '<', $file or return undef;
	my %r = (ok => 0, retries => 0, nfail => 0, failures => [],
		bodies => {});
	while (<$fh>) {
		chomp;
		my ($k, @v) = split /\t/, $_, -1;
		if ($k eq 'failure') { push @{ $r{failures} }, $v[0] }
		elsif ($k eq 'body') { $r{bodies}{ $v[1] } += $v[0] }
		else { $r{$k} = $v[0] }
	}
	close $fh;
	push @{ $r{failures} }, '(and more failures)'
		if $r{nfail} > @{ $r{failures} };
	return \%r;
}

1;
